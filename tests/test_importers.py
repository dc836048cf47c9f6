"""Every import format, malformed input included, and a 100k-line list with bad lines sprinkled in."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.importers import json_stream
from engine.importers.formats import ImportFormat, detect_format, read_records, records_from_text
from engine.importers.plain_text import parse_plain_text
from engine.importers.records import HexBatch, ImportFormatError, ParsedRecord, RejectedLine
from engine.importing import ImportRefusedError, import_records
from engine.lists import HashList, SourceProgramme
from engine.signals import SignalType
from engine.store import Store
from hashing.errors import ReasonCode
from tests.conformance import ROOT

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "30a10efd71cc3d429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af"
MD5 = "d35c785545392755e7e4164457657269"
SHA1 = "ea45d7166b30f98aac6af52f952193ce3083cb4c"
ALL_TYPES = frozenset(SignalType)


def new_store(types: frozenset[SignalType] = ALL_TYPES, name: str = "l") -> Store:
    store = Store(":memory:")
    store.create_list(HashList(name, SourceProgramme.LOCAL, types))
    return store


def flatten(results: object) -> list[ParsedRecord | RejectedLine]:
    out: list[ParsedRecord | RejectedLine] = []
    for item in results:  # type: ignore[attr-defined]
        if isinstance(item, HexBatch):
            out.extend(
                ParsedRecord(int(line), bytes(row).hex()) for line, row in zip(item.lines, item.values, strict=True)
            )
        else:
            out.append(item)
    return out


def test_plain_text_lines_types_comments_and_bad_lines() -> None:
    text = f"# a comment\n\n{PDQ_A}\npdq {PDQ_B.upper()}\nmd5 {MD5}\n{SHA1}\ntoo many fields here\n"
    report = import_records(new_store(), "l", records_from_text(text, ImportFormat.PLAIN))
    assert (report.added, report.rejected) == (4, 1)
    assert report.rejects[0].line == 7 and report.rejects[0].reason is ReasonCode.MALFORMED


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("abc", ReasonCode.BAD_LENGTH),
        ("g" * 64, ReasonCode.NOT_HEX),
        ("0" * 64, ReasonCode.ZERO_PDQ),
        ("ab cd" + "1" * 59, ReasonCode.UNKNOWN_TYPE),  # two fields: "TYPE HASH"
        (f"video {PDQ_A}", ReasonCode.UNKNOWN_TYPE),
        (f"md5 {PDQ_A}", ReasonCode.BAD_LENGTH),
        ("é" * 64, ReasonCode.NOT_HEX),
    ],
)
def test_plain_text_rejects_with_reasons(line: str, reason: ReasonCode) -> None:
    report = import_records(new_store(), "l", records_from_text(f"{line}\n{MD5}\n", ImportFormat.PLAIN))
    assert report.added == 1 and [r.reason for r in report.rejects] == [reason]
    # A file of nothing but that line is refused whole, with the line's reason in the report.
    with pytest.raises(ImportRefusedError) as refused:
        import_records(new_store(), "l", records_from_text(line + "\n", ImportFormat.PLAIN))
    assert refused.value.reason is ReasonCode.NOTHING_ACCEPTED
    assert [r.reason for r in refused.value.report.rejects] == [reason]


def test_types_outside_the_list_are_rejected() -> None:
    text = f"{PDQ_A}\n{MD5}\n"
    report = import_records(new_store(frozenset({SignalType.MD5})), "l", records_from_text(text, ImportFormat.PLAIN))
    assert report.added == 1 and [r.reason for r in report.rejects] == [ReasonCode.TYPE_NOT_IN_LIST]


hex_lines = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: b.hex()),
    st.binary(min_size=32, max_size=32).map(lambda b: b.hex().upper()),
    st.binary(min_size=16, max_size=16).map(lambda b: b.hex()),
    st.sampled_from(["", "# note", "0" * 64, "z" * 64, "x", f"pdq {PDQ_A}", f"  {PDQ_B}  ", "a b c"]),
    st.text(max_size=70).filter(lambda s: "\n" not in s and "\r" not in s),
)


@settings(max_examples=80, deadline=None)
@given(lines=st.lists(hex_lines, max_size=60))
def test_bulk_plain_parsing_equals_the_line_by_line_reference(lines: list[str]) -> None:
    bulk = flatten(parse_plain_text(io.StringIO("\n".join(lines))))
    reference = flatten(parse_plain_text(io.StringIO("\n".join(lines)), bulk=False))
    assert [_case_folded(r) for r in bulk] == [_case_folded(r) for r in reference]


def _case_folded(record: ParsedRecord | RejectedLine) -> ParsedRecord | RejectedLine:
    """Bulk decoding prints hex in lower case; the import treats either case the same."""
    if isinstance(record, ParsedRecord) and record.signal_name is None:
        return ParsedRecord(record.line, record.hash_text.lower())
    return record


def test_100k_line_list_with_bad_lines_sprinkled_in(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, (100_000, 32), dtype=np.uint8)
    lines = [row.tobytes().hex() for row in codes]
    bad = {
        ReasonCode.BAD_LENGTH: range(10, 100_000, 1000),  # 100 lines cut short
        ReasonCode.NOT_HEX: range(20, 100_000, 2000),  # 50 lines with a 'q'
        ReasonCode.ZERO_PDQ: range(30, 100_000, 5000),  # 20 all-zero hashes
        ReasonCode.DUPLICATE: range(40, 100_000, 4000),  # 25 copies of line 1
        ReasonCode.MALFORMED: range(50, 100_000, 10_000),  # 10 lines with three fields
    }
    for reason, numbers in bad.items():
        for i in numbers:
            lines[i] = {
                ReasonCode.BAD_LENGTH: lines[i][:50],
                ReasonCode.NOT_HEX: "q" + lines[i][1:],
                ReasonCode.ZERO_PDQ: "0" * 64,
                ReasonCode.DUPLICATE: lines[0],
                ReasonCode.MALFORMED: f"pdq {lines[i]} extra",
            }[reason]
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines) + "\n")
    report = import_records(new_store(), "l", read_records(path), source_file=str(path))
    expected = {reason.value: len(numbers) for reason, numbers in bad.items()}
    assert report.reject_counts() == expected
    assert report.added == 100_000 - sum(expected.values())
    assert report.records_read == 100_000
    assert sorted(r.line for r in report.rejects if r.reason is ReasonCode.NOT_HEX) == [
        i + 1 for i in bad[ReasonCode.NOT_HEX]
    ]


def test_csv_and_tsv_with_header_aliases() -> None:
    csv_text = f"Hash,Signal_Type,ID,Category\n{PDQ_A},pdq,E1,A1\n{MD5},md5,E2,B1\n{PDQ_B},,E3,\n,pdq,E4,A1\n1,2\n"
    parsed = flatten(records_from_text(csv_text, ImportFormat.CSV))
    assert parsed[0] == ParsedRecord(2, PDQ_A, "pdq", "E1", "A1")
    assert parsed[2] == ParsedRecord(4, PDQ_B, None, "E3", None)
    assert [r.reason for r in parsed if isinstance(r, RejectedLine)] == [
        ReasonCode.MISSING_HASH,
        ReasonCode.MALFORMED,
    ]
    spaced = import_records(new_store(), "l", records_from_text(f"hash\nab cd{'1' * 59}\n{MD5}\n", ImportFormat.CSV))
    assert [r.reason for r in spaced.rejects] == [ReasonCode.NOT_HEX]
    tsv_text = f"md5\tid\n{MD5}\tX\n"
    assert flatten(records_from_text(tsv_text, ImportFormat.CSV)) == [ParsedRecord(2, MD5, "md5", "X", None)]


def test_results_come_in_line_order_across_bulk_and_line_paths() -> None:
    text = f"pdq {PDQ_A}\n{PDQ_A}\n# note\n{PDQ_B}\nbad line here\n{MD5}\n"
    lines = [r.line for r in flatten(parse_plain_text(io.StringIO(text)))]
    assert lines == [1, 2, 4, 5, 6]
    report = import_records(new_store(), "l", records_from_text(text, ImportFormat.PLAIN))
    assert [(r.line, r.reason) for r in report.rejects] == [(2, ReasonCode.DUPLICATE), (5, ReasonCode.MALFORMED)]


def test_csv_lines_are_physical_lines_and_several_fingerprint_columns_are_read() -> None:
    text = f'id,note,md5,sha1\nN-1,"spans\ntwo lines",{MD5},{SHA1}\nN-2,x,{MD5}\n'
    parsed = flatten(records_from_text(text, ImportFormat.CSV))
    assert parsed[:2] == [ParsedRecord(2, MD5, "md5", "N-1"), ParsedRecord(2, SHA1, "sha1", "N-1")]
    assert isinstance(parsed[2], RejectedLine) and parsed[2].line == 4


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    for content, fmt in ((f"hash,id\n{PDQ_A},E1\n", ImportFormat.CSV), (f"{PDQ_A}\n", ImportFormat.PLAIN)):
        path = tmp_path / f"bom.{fmt}"
        path.write_bytes(b"\xef\xbb\xbf" + content.encode())
        assert detect_format(path) is fmt
        report = import_records(new_store(), "l", read_records(path))
        assert (report.added, report.rejected) == (1, 0)


def test_csv_without_a_hash_column_is_a_file_level_error() -> None:
    with pytest.raises(ImportFormatError):
        list(records_from_text("name,size\na,1\n", ImportFormat.CSV))


def test_reference_hasher_output_both_shapes_and_the_conformance_needles() -> None:
    text = f"{PDQ_A},100,/photos/a.jpg\nhash={PDQ_B},quality=90,filename=b.jpg\nbroken\n"
    parsed = flatten(records_from_text(text, ImportFormat.HASHER))
    assert parsed[0] == ParsedRecord(1, PDQ_A, "pdq", "/photos/a.jpg")
    assert parsed[1] == ParsedRecord(2, PDQ_B, "pdq", "b.jpg")
    assert isinstance(parsed[2], RejectedLine)
    # The reference's own test lists are plain hex, some lines deliberately cut short.
    haystack = ROOT / "pdq/data/reg-test-input/haystack.txt"
    assert detect_format(haystack) is ImportFormat.PLAIN
    report = import_records(new_store(), "l", read_records(haystack))
    lines = [line.strip() for line in haystack.read_text().splitlines() if line.strip()]
    short = sum(len(line) != 64 for line in lines)
    assert report.reject_counts().get("BAD_LENGTH", 0) == short
    assert report.added + report.rejected == len(lines)


NCMEC_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
  <images count="3" maxTimestamp="2024-01-01T00:00:00Z">
    <image>
      <id>N-1</id><member id="42">An ESP</member><classification>A1</classification>
      <fingerprints><md5>{MD5}</md5><sha1>{SHA1}</sha1><pdq>{PDQ_A}</pdq></fingerprints>
    </image>
    <image><id>N-2</id><classification>B2</classification><fingerprints><pdq>{PDQ_B}</pdq></fingerprints></image>
    <image><classification>A1</classification><fingerprints><pdq>{PDQ_B}</pdq></fingerprints></image>
    <deletedImage><id>N-9</id><member id="42">An ESP</member></deletedImage>
  </images>
  <videos count="1"><video><id>V-1</id><fingerprints><md5>{MD5}</md5></fingerprints></video></videos>
</queryResult>
"""


def test_ncmec_xml_entries_fingerprints_and_tombstones() -> None:
    parsed = flatten(records_from_text(NCMEC_XML, ImportFormat.NCMEC_XML))
    records = [r for r in parsed if isinstance(r, ParsedRecord)]
    assert [(r.signal_name, r.external_id, r.classification) for r in records[:3]] == [
        ("md5", "N-1", "A1"),
        ("sha1", "N-1", "A1"),
        ("pdq", "N-1", "A1"),
    ]
    assert ParsedRecord(4, "", None, "N-9", None, deleted=True) in records
    assert [r.reason for r in parsed if isinstance(r, RejectedLine)] == [ReasonCode.MALFORMED]


def test_ncmec_xml_truncated_keeps_what_came_before() -> None:
    parsed = flatten(records_from_text(NCMEC_XML[: NCMEC_XML.index("<deletedImage>") + 20], ImportFormat.NCMEC_XML))
    assert sum(isinstance(r, ParsedRecord) for r in parsed) == 4
    assert isinstance(parsed[-1], RejectedLine) and parsed[-1].reason is ReasonCode.MALFORMED


STOPNCII = {
    "count": 3,
    "nextPageToken": "abc",
    "hashRecords": [
        {
            "hashValue": PDQ_A,
            "hashStatus": "Active",
            "caseNumbers": {"c-2": "Active", "c-1": "Active"},
            "signalType": "ImagePDQ",
            "lastModtimestamp": 1,
        },
        {"hashValue": MD5, "hashStatus": "Received", "caseNumbers": [], "signalType": "VideoMD5"},
        {"hashValue": PDQ_B, "hashStatus": "Withdrawn", "signalType": "ImagePDQ"},
        {"hashStatus": "Active", "signalType": "ImagePDQ"},
        "not an object",
    ],
}


def test_stopncii_json_even_across_read_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setattr(json_stream, "_CHUNK", 7)
    parsed = flatten(records_from_text(json.dumps(STOPNCII) + "\n" + json.dumps(STOPNCII), ImportFormat.STOPNCII_JSON))
    records = [r for r in parsed if isinstance(r, ParsedRecord)]
    assert len(records) == 6
    assert records[0] == ParsedRecord(1, PDQ_A, "ImagePDQ", "c-1,c-2", "Active")
    assert records[2].deleted and records[1].signal_name == "VideoMD5"
    assert [r.reason for r in parsed if isinstance(r, RejectedLine)] == [
        ReasonCode.MISSING_HASH,
        ReasonCode.MALFORMED,
    ] * 2


def test_tat_json_and_a_broken_document() -> None:
    import json

    doc = {
        "count": 2,
        "results": [
            {"hash_digest": MD5, "algorithm": "MD5", "ideology": "far-right", "deleted": False, "id": 2819},
            {"hash_digest": PDQ_A, "algorithm": "PDQ", "ideology": "islamist", "deleted": True, "id": 2821},
        ],
    }
    parsed = flatten(records_from_text(json.dumps(doc), ImportFormat.TAT_JSON))
    assert parsed[0] == ParsedRecord(1, MD5, "MD5", "2819", "far-right", False)
    assert parsed[1].deleted  # type: ignore[union-attr]
    broken = flatten(records_from_text(json.dumps(doc)[:-20], ImportFormat.TAT_JSON))
    assert isinstance(broken[-1], RejectedLine) and broken[-1].reason is ReasonCode.MALFORMED and broken[-1].fatal
    as_strings = {"results": [{"hash_digest": MD5, "algorithm": "MD5", "deleted": "false", "id": 1}]}
    first = flatten(records_from_text(json.dumps(as_strings), ImportFormat.TAT_JSON))[0]
    assert isinstance(first, ParsedRecord) and not first.deleted


def test_the_json_key_as_a_value_is_not_an_array() -> None:
    import json

    doc = {"note": "hashRecords", "hashRecords": [{"hashValue": PDQ_A, "signalType": "ImagePDQ"}]}
    assert len(flatten(records_from_text(json.dumps(doc), ImportFormat.STOPNCII_JSON))) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (f"{PDQ_A}\n", ImportFormat.PLAIN),
        (f"pdq {PDQ_A}\n", ImportFormat.PLAIN),
        (f"hash,type\n{PDQ_A},pdq\n", ImportFormat.CSV),
        (f"{PDQ_A},100,a.jpg\n", ImportFormat.HASHER),
        (f"hash={PDQ_A},quality=100,filename=a\n", ImportFormat.HASHER),
        (NCMEC_XML, ImportFormat.NCMEC_XML),
        ('{"hashRecords": []}', ImportFormat.STOPNCII_JSON),
        ('{"results": []}', ImportFormat.TAT_JSON),
    ],
)
def test_format_detection(tmp_path: Path, content: str, expected: ImportFormat) -> None:
    path = tmp_path / "list"
    path.write_text(content)
    assert detect_format(path) is expected


def test_unknown_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text('{"items": []}')
    with pytest.raises(ImportFormatError):
        detect_format(path)

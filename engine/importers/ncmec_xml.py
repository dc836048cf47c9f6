"""NCMEC hash-sharing API v2 XML pages: `<image>`/`<video>` entries with `<fingerprints>`, and
`<deletedImage>`/`<deletedVideo>` tombstones. Streamed element by element; namespaces ignored.

Each fingerprint (md5, sha1, pdq) of an entry becomes one list entry carrying the NCMEC entry id and its
classification. A tombstone removes every entry with that id. One file holds one page (one XML document).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import BinaryIO

from engine.importers.records import ParsedRecord, ParseResult, RejectedLine
from hashing.errors import ReasonCode

_ENTRY_TAGS = frozenset({"image", "video", "deletedimage", "deletedvideo"})


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_ncmec_xml(stream: BinaryIO) -> Iterator[ParseResult]:
    ordinal = 0
    try:
        for _, element in ET.iterparse(stream, events=("end",)):
            name = _local(element.tag).lower()
            if name not in _ENTRY_TAGS:
                continue
            ordinal += 1
            yield from _entry(ordinal, name, element)
            element.clear()  # keep memory flat on large pages
    except ET.ParseError as exc:
        yield RejectedLine(
            ordinal + 1, ReasonCode.MALFORMED, f"XML syntax error, rest of file unreadable: {exc}", fatal=True
        )


def _entry(ordinal: int, name: str, element: ET.Element) -> Iterator[ParseResult]:
    children = {_local(child.tag).lower(): child for child in element}
    entry_id = (children["id"].text or "").strip() if "id" in children else ""
    if not entry_id:
        yield RejectedLine(ordinal, ReasonCode.MALFORMED, f"<{name}> without an <id>")
        return
    classification_node = children.get("classification")
    classification = (classification_node.text or "").strip() or None if classification_node is not None else None
    deleted = name.startswith("deleted")
    fingerprints = children.get("fingerprints")
    hashes = [(_local(f.tag).lower(), (f.text or "").strip()) for f in fingerprints] if fingerprints is not None else []
    if deleted and not hashes:
        yield ParsedRecord(ordinal, "", external_id=entry_id, classification=classification, deleted=True)
        return
    if not hashes:
        yield RejectedLine(ordinal, ReasonCode.MISSING_HASH, f"entry {entry_id} has no fingerprints")
        return
    for signal_name, value in hashes:
        yield ParsedRecord(ordinal, value, signal_name, entry_id, classification, deleted)

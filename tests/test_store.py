"""Versions, tombstones, diffs, owners, exports, migrations, and crash safety of the SQLite store."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.exporters import ExportFormat, export_entries
from engine.importers.formats import ImportFormat, records_from_text
from engine.importers.records import ParsedRecord
from engine.importing import ImportGuard, ImportMode, ImportRefusedError, import_records
from engine.lists import HashList, ListAction, SourceProgramme
from engine.signals import SignalType
from engine.store import SCHEMA_VERSION, ListNotFoundError, Store, StoreError

rng = np.random.default_rng(3)
HASHES = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(10)]
MD5 = "d35c785545392755e7e4164457657269"


def csv_of(rows: list[tuple[str, str, str]]) -> str:
    return "hash,id,classification\n" + "".join(f"{h},{i},{c}\n" for h, i, c in rows)


SHRINK_ALLOWED = ImportGuard(allow_shrink=True)


def make_store(path: Path | str = ":memory:") -> Store:
    store = Store(path)
    store.create_list(HashList("ncmec", SourceProgramme.NCMEC, frozenset({SignalType.PDQ, SignalType.MD5})))
    return store


def live_hashes(store: Store, version: int | None = None) -> list[str]:
    return [e.hex for e in store.entries("ncmec", version)]


def test_replace_imports_create_versions_with_tombstones_and_diffs() -> None:
    store = make_store()
    v1 = import_records(
        store,
        "ncmec",
        records_from_text(csv_of([(h, f"E{i}", "A1") for i, h in enumerate(HASHES[:5])]), ImportFormat.CSV),
        source_file="v1.csv",
    )
    assert (v1.version, v1.added, v1.total) == (1, 5, 5)
    rows = [(h, f"E{i}", "A1") for i, h in enumerate(HASHES[2:8], start=2)]
    v2 = import_records(store, "ncmec", records_from_text(csv_of(rows), ImportFormat.CSV), source_file="v2.csv")
    assert (v2.added, v2.unchanged, v2.removed, v2.total) == (3, 3, 2, 6)
    assert live_hashes(store) == HASHES[2:8]
    assert live_hashes(store, 1) == HASHES[:5]
    diff = store.diff("ncmec", 1, 2)
    assert [e.hex for e in diff.added] == HASHES[5:8] and [e.hex for e in diff.removed] == HASHES[:2]
    assert all(e.removed_version is None for e in diff.added) and diff.changed == []
    back = store.diff("ncmec", 2, 1)
    assert [e.hex for e in back.added] == HASHES[:2] and [e.hex for e in back.removed] == HASHES[5:8]
    store.activate("ncmec", 1)
    assert live_hashes(store) == HASHES[:5]
    assert [v.number for v in store.versions("ncmec")] == [1, 2]
    entry = next(store.entries("ncmec", 2))
    assert (entry.source_file, entry.external_id, entry.classification, entry.added_version) == (
        "v1.csv",
        "E2",
        "A1",
        1,
    )
    assert entry.source_line == 4  # line 4 of v1.csv (header is line 1)


def test_delta_imports_and_ncmec_tombstones_by_external_id() -> None:
    store = make_store()
    import_records(
        store,
        "ncmec",
        records_from_text(csv_of([(HASHES[0], "N-1", "A1"), (HASHES[1], "N-2", "B1")]), ImportFormat.CSV),
    )
    delta = (
        "<queryResult><images><deletedImage><id>N-1</id></deletedImage>"
        f"<image><id>N-3</id><fingerprints><pdq>{HASHES[2]}</pdq><md5>{MD5}</md5></fingerprints></image>"
        "</images></queryResult>"
    )
    report = import_records(store, "ncmec", records_from_text(delta, ImportFormat.NCMEC_XML), mode=ImportMode.DELTA)
    assert (report.added, report.removed, report.total) == (2, 1, 3)
    assert sorted((e.external_id, e.signal_type.value) for e in store.entries("ncmec")) == [
        ("N-2", "pdq"),
        ("N-3", "md5"),
        ("N-3", "pdq"),
    ]


def test_duplicate_hashes_keep_every_owner() -> None:
    store = make_store()
    text = csv_of([(HASHES[0], "E1", "A1"), (HASHES[0], "E2", "A2"), (HASHES[0], "E1", "A1")])
    report = import_records(store, "ncmec", records_from_text(text, ImportFormat.CSV))
    assert report.added == 2 and report.reject_counts() == {"DUPLICATE": 1}
    live = store.live_signals("ncmec", SignalType.PDQ)
    assert live.values.shape == (2, 32) and len(set(live.entry_ids.tolist())) == 2


def test_live_signals_exclude_tombstones_and_empty_lists_load() -> None:
    store = make_store()
    import_records(store, "ncmec", records_from_text("\n".join(HASHES[:4]), ImportFormat.PLAIN))
    import_records(store, "ncmec", records_from_text("\n".join(HASHES[1:3]), ImportFormat.PLAIN))
    values = store.live_signals("ncmec", SignalType.PDQ).values
    assert [bytes(v).hex() for v in values] == HASHES[1:3]
    assert store.live_signals("ncmec", SignalType.MD5).values.shape == (0, 16)


def test_export_round_trips_through_import() -> None:
    store = make_store()
    import_records(
        store, "ncmec", records_from_text(csv_of([(h, f"E{i}", "A1") for i, h in enumerate(HASHES)]), ImportFormat.CSV)
    )
    for fmt, import_format in ((ExportFormat.CSV, ImportFormat.CSV), (ExportFormat.PLAIN, ImportFormat.PLAIN)):
        out = io.StringIO()
        assert export_entries(store.entries("ncmec"), out, fmt) == 10
        copy = make_store()
        report = import_records(copy, "ncmec", records_from_text(out.getvalue(), import_format))
        assert report.rejected == 0 and [e.hex for e in copy.entries("ncmec")] == HASHES


def test_errors_name_what_is_wrong() -> None:
    store = make_store()
    with pytest.raises(ListNotFoundError):
        store.get_list("nope")
    with pytest.raises(StoreError, match="no active version"):
        list(store.entries("ncmec"))
    with pytest.raises(StoreError, match="exists already"):
        store.create_list(HashList("ncmec", SourceProgramme.NCMEC, frozenset({SignalType.PDQ})))
    with pytest.raises(StoreError, match="no version 3"):
        store.activate("ncmec", 3)


def test_delete_list_removes_everything() -> None:
    store = make_store()
    import_records(store, "ncmec", records_from_text(csv_of([(HASHES[0], "E1", "A1")]), ImportFormat.CSV))
    store.delete_list("ncmec")
    assert store.lists() == []
    for table in ("segments", "entry_meta", "tombstones", "versions"):
        assert store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def test_schema_is_migrated_and_newer_schemas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    with Store(path) as store:  # reopening migrates nothing and keeps data
        assert store.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_an_exception_mid_import_leaves_the_previous_version_intact() -> None:
    store = make_store()
    import_records(store, "ncmec", records_from_text("\n".join(HASHES[:3]), ImportFormat.PLAIN))

    def records_then_failure() -> object:
        for i, h in enumerate(HASHES[3:], start=1):
            yield ParsedRecord(i, h)
        raise RuntimeError("disk unplugged")

    with pytest.raises(RuntimeError):
        import_records(store, "ncmec", records_then_failure())  # type: ignore[arg-type]
    assert [v.number for v in store.versions("ncmec")] == [1]
    assert live_hashes(store) == HASHES[:3]
    assert store.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 1


KILLED_IMPORT = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from engine.importing import import_records
from engine.importers.records import ParsedRecord
from engine.store import Store
hashes = sys.argv[3].split(",")
def records():
    for i in range(200_000):
        if i == 150_000:
            os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-import, holding the write lock
        yield ParsedRecord(i + 1, hashes[i % len(hashes)], external_id=str(i))
import_records(Store(sys.argv[1]), "ncmec", records())
"""


def test_a_killed_import_process_leaves_the_previous_version_intact(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with make_store(path) as store:
        import_records(store, "ncmec", records_from_text("\n".join(HASHES[:3]), ImportFormat.PLAIN))
    root = str(Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-c", KILLED_IMPORT, str(path), root, ",".join(HASHES)], check=False)
    assert result.returncode == -9
    with Store(path) as store:
        assert [v.number for v in store.versions("ncmec")] == [1]
        assert live_hashes(store) == HASHES[:3]
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        report = import_records(store, "ncmec", records_from_text("\n".join(HASHES[:5]), ImportFormat.PLAIN))
        assert (report.version, report.added) == (2, 2)  # the store is usable again


def test_list_settings_round_trip() -> None:
    store = Store(":memory:")
    spec = HashList(
        "fp",
        SourceProgramme.INDUSTRY,
        frozenset({SignalType.PDQ}),
        threshold=20,
        action=ListAction.REVIEW,
        negative=True,
    )
    created = store.create_list(spec)
    assert (created.threshold, created.action, created.negative, created.active_version) == (
        20,
        ListAction.REVIEW,
        True,
        None,
    )


def test_a_file_that_breaks_off_imports_nothing_in_either_mode() -> None:
    store = make_store()
    full = (
        "<queryResult><images>"
        + "".join(
            f"<image><id>N-{i}</id><fingerprints><pdq>{h}</pdq></fingerprints></image>" for i, h in enumerate(HASHES)
        )
        + "</images></queryResult>"
    )
    import_records(store, "ncmec", records_from_text(full, ImportFormat.NCMEC_XML))
    for mode in ImportMode:
        with pytest.raises(ImportRefusedError, match="nothing imported"):
            import_records(store, "ncmec", records_from_text(full[: len(full) // 3], ImportFormat.NCMEC_XML), mode=mode)
    assert [v.number for v in store.versions("ncmec")] == [1] and len(live_hashes(store)) == 10


def test_entry_ids_are_never_reused_after_a_list_is_deleted() -> None:
    store = make_store()
    store.create_list(HashList("other", SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
    import_records(store, "ncmec", records_from_text(HASHES[0], ImportFormat.PLAIN))
    import_records(store, "other", records_from_text(HASHES[1], ImportFormat.PLAIN))
    deleted_id = next(store.entries("other")).entry_id
    store.delete_list("other")
    store.create_list(HashList("third", SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
    import_records(store, "third", records_from_text(HASHES[2], ImportFormat.PLAIN))
    assert next(store.entries("third")).entry_id > deleted_id
    assert deleted_id not in store.entries_by_id([deleted_id])


def test_within_one_file_the_last_record_about_an_entry_wins() -> None:
    store = make_store()
    import_records(store, "ncmec", records_from_text(csv_of([(HASHES[0], "N-1", "A1")]), ImportFormat.CSV))
    delta = "hash,id,classification,deleted\n"
    delta += f"{HASHES[0]},N-1,A1,true\n{HASHES[0]},N-1,A1,\n"  # delete, then re-add: stays
    delta += f"{HASHES[1]},N-2,A1,\n{HASHES[1]},N-2,A1,true\n"  # add, then delete: gone
    report = import_records(store, "ncmec", records_from_text(delta, ImportFormat.CSV), mode=ImportMode.DELTA)
    assert [(e.hex, e.external_id) for e in store.entries("ncmec")] == [(HASHES[0], "N-1")]
    assert (report.added, report.removed, report.unchanged, report.total) == (0, 0, 1, 1)


def test_a_new_classification_replaces_the_entry() -> None:
    store = make_store()
    import_records(store, "ncmec", records_from_text(csv_of([(HASHES[0], "N-1", "A2")]), ImportFormat.CSV))
    report = import_records(store, "ncmec", records_from_text(csv_of([(HASHES[0], "N-1", "A1")]), ImportFormat.CSV))
    assert (report.changed, report.added, report.removed, report.total) == (1, 0, 0, 1)
    assert [e.classification for e in store.entries("ncmec")] == ["A1"]
    assert [e.classification for e in store.entries("ncmec", 1)] == ["A2"]


def test_threads_share_a_store(tmp_path: Path) -> None:
    import threading

    store = Store(tmp_path / "h.db")
    errors: list[BaseException] = []

    def work(name: str, seed: int) -> None:
        try:
            store.create_list(HashList(name, SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
            for round_ in range(5):
                rows = np.random.default_rng(seed + round_).integers(0, 256, (2000, 32), dtype=np.uint8)
                text = "\n".join(bytes(r).hex() for r in rows)
                # Each round replaces the whole list on purpose.
                import_records(store, name, records_from_text(text, ImportFormat.PLAIN), guard=SHRINK_ALLOWED)
                assert store.live_signals(name, SignalType.PDQ).values.shape == (2000, 32)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"list-{i}", 100 * i)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(h.active_version or 0 for h in store.lists()) == [5, 5, 5]

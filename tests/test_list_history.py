"""Import reports count reclassified entries, diffs compare content, and an exported list re-imported keeps
each entry's original provenance: the README's rollback recipe leaves no trace but the version itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from engine.store import Store

A, B, C = "aa" * 32, "bb" * 32, "cc" * 32


def _import(tmp_path: Path, name: str, text: str, db: list[str], *options: str) -> int:
    path = tmp_path / name
    path.write_text(text)
    return main(["lists", "import", str(path), "--list", "l", *options, *db])


def test_the_report_counts_changed_entries_in_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", str(tmp_path / "h.db")]
    assert _import(tmp_path, "v1.csv", f"hash,id,classification\n{A},N-1,A1\n{B},N-2,A1\n", db) == 0
    capsys.readouterr()
    assert _import(tmp_path, "v2.csv", f"hash,id,classification\n{A},N-1,B2\n{B},N-2,A1\n", db, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["changed"], report["unchanged"], report["removed"]) == (0, 1, 1, 0)
    assert _import(tmp_path, "v3.csv", f"hash,id,classification\n{A},N-1,A1\n{B},N-2,A1\n", db) == 0
    assert "0 added, 1 changed, 1 unchanged, 0 removed" in capsys.readouterr().out
    assert main(["lists", "diff", "l", "1", "2", *db]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"~ pdq {A} N-1 B2 (was A1)"] and "1 reclassified" in err


def test_rollback_by_export_and_reimport_diffs_clean_and_keeps_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(tmp_path / "h.db")]
    v1 = f"hash,id,classification\n{A},N-1,A1\n{B},N-2,A1\n{C},N-3,A1\n"
    assert _import(tmp_path, "v1.csv", v1, db) == 0
    assert _import(tmp_path, "v2.csv", f"hash,id,classification\n{A},N-1,A1\n{B},N-2,A1\n", db) == 0  # C dropped
    # The README's recipe: activate the old version, export it, import the export.
    assert main(["lists", "activate", "l", "1", *db]) == 0
    exported = tmp_path / "export.csv"
    assert main(["lists", "export", "l", "--out", str(exported), *db]) == 0
    capsys.readouterr()
    assert main(["lists", "import", str(exported), "--list", "l", *db]) == 0
    capsys.readouterr()
    assert main(["lists", "diff", "l", "1", "3", "--json", *db]) == 0
    assert json.loads(capsys.readouterr().out) == {"added": [], "removed": [], "changed": []}
    with Store(db[1]) as store:
        restored = {e.hex: e for e in store.entries("l", 3)}
        assert set(restored) == {A, B, C}
        back = restored[C]  # removed by v2, back through the export: a new entry with the original provenance
        assert (back.source_file, back.source_line, back.added_version) == (str(tmp_path / "v1.csv"), 4, 3)
        first = next(e for e in store.entries("l", 1) if e.hex == C)
        assert back.imported_at == first.imported_at
        assert restored[A].entry_id == next(e for e in store.entries("l", 1) if e.hex == A).entry_id  # unchanged

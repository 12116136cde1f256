"""Exports kept on disk for a download (dapt_core/studio/export_cache.py): one file per project and run, and
only the newest few, so the cache cannot grow with every run ever exported."""

from __future__ import annotations

import os

from dapt_core.studio import export_cache


def test_only_the_newest_exports_stay(tmp_path):
    paths = [export_cache.onnx_zip_path(tmp_path, "line-3", f"run-{k}") for k in range(6)]
    assert len(set(paths)) == 6 and all(p.parent == tmp_path / "exports" for p in paths)
    for age, path in enumerate(reversed(paths)):  # run-5 newest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"zip")
        os.utime(path, (1_700_000_000 - age * 60, 1_700_000_000 - age * 60))
    (tmp_path / "exports" / "notes.txt").write_text("not an export")
    gone = export_cache.prune(tmp_path, keep=4)
    assert sorted(p.name for p in gone) == ["line-3-run-0-onnx.zip", "line-3-run-1-onnx.zip"]
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [
        "line-3-run-2-onnx.zip", "line-3-run-3-onnx.zip", "line-3-run-4-onnx.zip", "line-3-run-5-onnx.zip",
        "notes.txt"]
    assert export_cache.prune(tmp_path / "nowhere") == []


def test_a_half_written_export_is_removed_once_it_is_old(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    cut_off, writing = folder / "p-r1-onnx.zip.partial", folder / "p-r2-onnx.zip.partial"
    for path, age in ((cut_off, 2 * 3600), (writing, 30)):
        path.write_bytes(b"half")
        os.utime(path, (1_700_000_000 - age, 1_700_000_000 - age))
    assert export_cache.prune(tmp_path, now=1_700_000_000) == [cut_off]
    assert writing.exists()  # another session's export still being written

"""Export and every other file output: Taomi never deletes or overwrites a file it did not write
(issue 12, item 1 and its siblings), and a killed export leaves the previous one whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warehouse.outputs import LEDGER, OutputDir, OutputRefused, write_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def corpus_db(tmp_path, ingest_files) -> str:
    db = str(tmp_path / "w" / "taomi.duckdb")
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"document number {i} " + "word " * (i % 17)}) + "\n"
                           for i in range(250)))
    ingest_files(db, [src], "c")
    return db


def export(db, out, **kw):
    from flows.curriculum_task import export_shards

    return export_shards(db, "c", out, "jsonl", 100, **kw)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_export_refuses_a_users_folder_and_force_keeps_their_files(corpus_db, tmp_path):
    p = tmp_path / "p"
    (p / "src").mkdir(parents=True)
    (p / "src" / "train.py").write_text("x\n")
    (p / "README.md").write_text("mine\n")
    before = snapshot(p)
    with pytest.raises(OutputRefused, match=r"not empty and not written by Taomi \(holds README.md, src\).*--force"):
        export(corpus_db, p)
    assert snapshot(p) == before
    r = export(corpus_db, p, force=True)
    assert r["shards"] == 3 and (p / "src" / "train.py").read_text() == "x\n"
    first = set(os.listdir(p))
    export(corpus_db, p, order="random", force=True)  # re-export: only Taomi's own files change
    assert (p / "README.md").read_text() == "mine\n" and (p / "src" / "train.py").exists()
    shards = sorted(n for n in os.listdir(p) if n.startswith("train-"))
    assert len(shards) == 3 and not set(shards) & first  # the old shards are gone, the new ones in place


def test_export_refuses_the_folder_that_holds_the_database(corpus_db):
    folder = Path(corpus_db).parent
    before = snapshot(folder)
    for target in (folder, folder.parent):
        with pytest.raises(OutputRefused, match="holds the database"):
            export(corpus_db, target, force=True)
    assert snapshot(folder) == before


def test_export_refuses_a_file_and_leaves_it_alone(corpus_db, tmp_path):
    f = tmp_path / "out"
    f.write_text("a file\n")
    with pytest.raises(OutputRefused, match="exists and is not a folder"):
        export(corpus_db, f)
    assert f.read_text() == "a file\n" and [x.name for x in tmp_path.iterdir() if x.name.startswith(".")] == []


def test_re_export_replaces_only_its_own_files_and_same_content_is_a_no_op(corpus_db, tmp_path):
    out = tmp_path / "shards"
    a = export(corpus_db, out)
    assert a["status"] == "written"
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(os.listdir(out)) == sorted([LEDGER, "manifest.json", *(s["file"] for s in manifest["shards"])])
    again = export(corpus_db, out)
    assert again["status"] == "unchanged" and json.loads((out / "manifest.json").read_text()) == manifest
    # A shard the user edited is theirs now: a re-export leaves it (and says nothing is lost).
    edited = out / manifest["shards"][0]["file"]
    edited.write_text(edited.read_text() + "\n")
    b = export(corpus_db, out, order="random")
    assert b["status"] == "written" and edited.exists()
    new = json.loads((out / "manifest.json").read_text())
    assert {s["file"] for s in new["shards"]}.isdisjoint(s["file"] for s in manifest["shards"])
    assert sorted(os.listdir(out)) == sorted([LEDGER, "manifest.json", edited.name,
                                              *(s["file"] for s in new["shards"])])


def test_unwritable_output_folder_is_a_clear_refusal(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere: a path under a file stands in for "cannot create"
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(OutputRefused, match="cannot create the output folder"):
            OutputDir(blocker / "sub")
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OutputRefused, match="not writable"):
        OutputDir(ro)


def test_single_files_never_overwrite_a_users_file(tmp_path):
    user = tmp_path / "pairs.csv"
    user.write_text("theirs\n")
    with pytest.raises(OutputRefused, match="exists and was not written by Taomi; pass --force"):
        write_file(user, lambda p: p.write_text("ours\n"))
    assert user.read_text() == "theirs\n"
    mine = tmp_path / "mine.csv"
    write_file(mine, lambda p: p.write_text("v1\n"))
    write_file(mine, lambda p: p.write_text("v2\n"))  # Taomi's own file: replaced without --force
    assert mine.read_text() == "v2\n"
    write_file(user, lambda p: p.write_text("ours\n"), force=True)
    assert user.read_text() == "ours\n"
    with pytest.raises(OutputRefused, match="is a folder"):
        write_file(tmp_path, lambda p: None)


KILL_EXPORT = """
import sys, time
from pathlib import Path
import warehouse.export_store as es
real = es.sha256
n = {"calls": 0}
def slow(path):
    n["calls"] += 1
    if n["calls"] == 2:
        Path(sys.argv[3]).write_text("mid-export")
        time.sleep(120)
    return real(path)
es.sha256 = slow
from flows.curriculum_task import export_shards
export_shards(sys.argv[1], "c", sys.argv[2], "jsonl", 100, order="random")
"""


def test_sigkill_mid_export_keeps_the_previous_export_and_the_rerun_cleans_up(corpus_db, tmp_path):
    out = tmp_path / "shards"
    export(corpus_db, out)
    before = snapshot(out)
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", KILL_EXPORT, corpus_db, str(out), str(marker)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 90
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(".taomi-partial")} == before
    assert any(p.name.startswith(".taomi-partial") for p in out.iterdir())  # the killed run's staging
    r = export(corpus_db, out, order="random")
    assert r["status"] == "written"
    assert not any(p.name.startswith(".taomi-partial") for p in out.iterdir())
    clean = tmp_path / "clean"
    export(corpus_db, clean, order="random")
    rows = lambda d: [json.loads(x) for s in json.loads((d / "manifest.json").read_text())["shards"]
                      for x in (d / s["file"]).read_text().splitlines()]
    assert rows(out) == rows(clean)

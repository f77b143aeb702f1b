"""A received export folder cannot delete files outside it (issue 29, item 1).

The names in OUTDIR's ledger (`.taomi-owned.json`) and manifest are data: a ledger that names an
absolute path, `..`, a path through a sub-folder, a symbolic link or anything else that is not a
plain file of OUTDIR is refused as a whole, with one line, and nothing anywhere is deleted. The
property test builds hostile ledgers and manifests that name real files outside OUTDIR with their
true size, mtime and sha256 (what made the old code delete them) and checks that no file outside
OUTDIR changes, whatever the export, garbage collection or removal does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.outputs import LEDGER, OutputDir, OutputRefused


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory) -> str:
    from warehouse.db import session
    from warehouse.ingest import IngestConfig, ingest_paths

    folder = tmp_path_factory.mktemp("db")
    src = folder / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"document number {i} " + "word " * (i % 17)}) + "\n"
                           for i in range(120)))
    db = str(folder / "w" / "taomi.duckdb")
    with session(db) as con:
        ingest_paths(con, [src], IngestConfig("c"))
    return db


def entry(path: Path) -> dict:
    st_ = path.stat()
    return {"bytes": st_.st_size, "mtime_ns": st_.st_mtime_ns, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def tree_state(root: Path, skip: Path) -> dict[str, tuple]:
    """Every file and link under `root` outside `skip`: content, mode and mtime (so a replace shows)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if d == skip or skip in d.parents:
            dirnames[:] = []
            continue
        for n in filenames + [x for x in dirnames if (d / x).is_symlink()]:
            p = d / n
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
            else:
                s = p.stat()
                out[str(p)] = (p.read_bytes(), s.st_mode, s.st_mtime_ns)
    return out


def world(tmp: Path) -> tuple[Path, dict[str, Path]]:
    """OUTDIR at tmp/recv/out with victims beside it, above it and in a 'home' folder."""
    out = tmp / "recv" / "out"
    out.mkdir(parents=True)
    victims = {"thesis": tmp / "thesis.tex", "notes": tmp / "recv" / "notes.md",
               "key": tmp / "home" / ".ssh" / "id_ed25519.pub"}
    for i, (k, p) in enumerate(victims.items()):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{k}: the user's own file {i}\n" * (i + 1))
    return out, victims


def hostile_names(out: Path, victims: dict[str, Path]) -> list[str]:
    """Names that reach each victim from OUTDIR (absolute, `..`, through a folder, a link)."""
    names = []
    for k, v in victims.items():
        rel = os.path.relpath(v, out)
        names += [str(v), rel, f"shard-x/../{rel}", f"shard-{k}/../../{os.path.relpath(v, out.parent)}",
                  "./" + rel, rel.replace("/", "//")]
        link = out / f"shard-link-{k}.parquet"
        if not link.is_symlink():
            link.symlink_to(v)
        names.append(link.name)
    return names


# Unicode look-alikes of '.', '/' and '\': on POSIX they are plain characters of a file name
LOOKALIKE = st.sampled_from(["\u2024", "\uff0e", "\u2215", "\u2044", "\uff0f", "\u29f8", "\\", "\u0338", "."])


@st.composite
def ledgers(draw):
    """A ledger and a manifest: some hostile names (picked later, once the victims exist), some
    look-alike names made of unicode dots and slashes, some plain names."""
    n_hostile = draw(st.integers(0, 4))
    picks = draw(st.lists(st.integers(0, 20), min_size=n_hostile, max_size=n_hostile))
    odd = draw(st.lists(st.lists(LOOKALIKE, min_size=1, max_size=6).map("".join), max_size=3))
    plain = draw(st.lists(st.from_regex(r"shard-[0-9a-f]{1,6}\.parquet", fullmatch=True), max_size=2))
    in_manifest = draw(st.booleans())
    return picks, odd, plain, in_manifest


def plant(out: Path, victims: dict[str, Path], picks, odd, plain, in_manifest) -> list[str]:
    candidates = hostile_names(out, victims)
    names = [candidates[i % len(candidates)] for i in picks]
    target = victims["thesis"]
    files = {}
    for n in names + odd + plain:
        files[n] = entry(out / n if (out / n).is_file() and not (out / n).is_symlink() else target)
    (out / LEDGER).write_text(json.dumps({"writer": "taomi", "files": files}))
    if in_manifest:  # a manifest Taomi "owns" (it is in the ledger) whose shards are the names
        m = out / "manifest.json"
        m.write_text(json.dumps({"writer": "taomi", "shards": [{"file": n} for n in names + odd + plain]}))
        files["manifest.json"] = entry(m)
        (out / LEDGER).write_text(json.dumps({"writer": "taomi", "files": files}))
    return names


def test_the_three_files_of_the_report_survive_a_hostile_export_folder(corpus_db, tmp_path, record_fault):
    """The issue's case: ../thesis.tex, an absolute dotfile, shard-x/../../notes.md."""
    from typer.testing import CliRunner

    from taomi.cli import app

    out, victims = world(tmp_path)
    before = tree_state(tmp_path, out)
    names = [os.path.relpath(victims["thesis"], out), str(victims["key"]),
             "shard-x/../../" + os.path.relpath(victims["notes"], out.parent)]
    files = {n: entry(v) for n, v in zip(names, (victims["thesis"], victims["key"], victims["notes"]))}
    (out / LEDGER).write_text(json.dumps({"writer": "taomi", "files": files}))
    r = CliRunner().invoke(app, ["--db", corpus_db, "export", "c", str(out), "--order", "random"])
    assert r.exit_code == 2, r.output
    assert tree_state(tmp_path, out) == before
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Taomi deleted nothing" in err and "Traceback" not in r.output
    record_fault("ledgers", cases=1, outside_changed=0)


@settings(max_examples=int(os.environ.get("TAOMI_LEDGER_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ledgers())
def test_no_hostile_ledger_changes_a_file_outside_outdir(corpus_db, record_fault, case):
    from flows.curriculum_task import export_shards

    picks, odd, plain, in_manifest = case
    tmp = Path(tempfile.mkdtemp())
    try:
        out, victims = world(tmp)
        hostile = plant(out, victims, picks, odd, plain, in_manifest)
        before = tree_state(tmp, out)
        # each way Taomi deletes or replaces: an export (gc of old shards, the old manifest's shards)
        try:
            r = export_shards(corpus_db, "c", out, "jsonl", 50, order="random")
            refused = None
        except OutputRefused as exc:
            r, refused = None, str(exc)
        # ... and the removal of named files by an OutputDir, and a single-file write beside them
        for op in (lambda o: o.remove_owned(list(o.files)), lambda o: o.write_text("report.md", "x")):
            try:
                op(OutputDir(out))
            except OutputRefused as exc:
                assert "\n" not in str(exc)
        assert tree_state(tmp, out) == before, "a file outside OUTDIR changed"
        assert all(v.exists() for v in victims.values())
        if hostile:  # a ledger naming a file outside is refused as a whole, with one line
            assert refused is not None and "\n" not in refused and "deleted nothing" in refused
        elif refused is None:
            assert r["status"] == "written"
        record_fault("ledgers", cases=1, outside_changed=0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_link_inside_outdir_is_never_followed_or_trusted(corpus_db, tmp_path):
    """A shard name that is a symbolic link to a file outside: the export refuses; removing
    Taomi's files never follows a link, and a staging folder that is a link is left alone."""
    from flows.curriculum_task import export_shards

    out, victims = world(tmp_path)
    export_shards(corpus_db, "c", out, "jsonl", 50, order="random")
    manifest = json.loads((out / "manifest.json").read_text())
    first = out / manifest["shards"][0]["file"]
    first.unlink()
    first.symlink_to(victims["thesis"])
    ledger = json.loads((out / LEDGER).read_text())
    ledger["files"][first.name] = entry(victims["thesis"])
    (out / LEDGER).write_text(json.dumps(ledger))
    (out / ".taomi-partial-evil").symlink_to(victims["key"].parent, target_is_directory=True)
    (victims["key"].parent / ".taomi-partial").write_text("999999999")
    before = tree_state(tmp_path, out)
    with pytest.raises(OutputRefused, match="symbolic link"):
        export_shards(corpus_db, "c", out, "jsonl", 50)
    assert tree_state(tmp_path, out) == before and victims["key"].exists()

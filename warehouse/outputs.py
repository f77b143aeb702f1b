"""Every file Taomi writes goes through here: it never overwrites or deletes a file it did not
write, and never writes into the folder that holds the database.

What Taomi wrote in a folder is recorded in that folder's ledger, `.taomi-owned.json` (name,
size, mtime, sha256). A file counts as Taomi's when the ledger lists it and it is unchanged
since (same size and mtime, or same sha256); a file the user edited becomes the user's again.

- `OutputDir(path, exclusive=True)` (training shards): refuses a non-empty folder with no
  ledger, unless `force`, and even then deletes nothing of the user's.
- `OutputDir(path)` (reports, sample data, plots): may sit among the user's files; it refuses to
  replace one of them unless `force`.
- `write_file(path, ...)` for a single named output (`--pairs-out`, `hardset --out`).
Each file is written to a temporary name in the same folder, flushed, then renamed into place,
so a kill leaves either the old file or the new one; staging folders of killed runs
(`.taomi-partial-*`, with a marker inside) are removed by the next run in that folder.

A ledger or manifest may come from someone else (an export folder received as a tarball or on a
shared drive), so the names in it are data, not instructions: each must be one plain file name
of this folder (no absolute path, no `..`, no separator, not a symbolic link). A ledger that names
anything else is refused as a whole, before anything is deleted (`check_name`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from warehouse.procs import pid_alive

LEDGER = ".taomi-owned.json"
PARTIAL = ".taomi-partial-"
MARKER = ".taomi-partial"
FORCE_HINT = "pass --force to write anyway (Taomi still never deletes a file it did not write)"


class OutputRefused(ValueError):
    """Writing here would overwrite or delete a user's file, or the database; nothing was written."""


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_name(folder: Path, name: object, source: str) -> str:
    """`name` (read from the file `source`) if it is one plain file name directly inside
    `folder` that is not a symbolic link; otherwise OutputRefused naming the entry. Applied to
    every name a ledger or manifest gives before Taomi deletes, replaces or trusts that file."""
    why = None
    if not isinstance(name, str) or not name:
        why = "is not a file name"
    elif "\0" in name or "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        why = "is a path, not a name of this folder"
    elif name in (".", "..") or name == LEDGER:
        why = "is not a file of this folder"
    elif (folder / name).is_symlink():
        why = "is a symbolic link (Taomi writes no links)"
    elif (folder / name).exists() and not _inside(folder / name, folder):
        why = "resolves outside the folder"
    if why is None:
        return name
    shown = name if isinstance(name, str) else repr(name)
    raise OutputRefused(f"{source}: the entry {shown!r} {why}; Taomi deleted nothing. This file was not "
                        f"written by Taomi or was edited: remove that entry (or the file) and re-run")


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


class OutputDir:
    """A folder Taomi writes into; see the module docstring for the rules."""

    def __init__(self, path: str | os.PathLike, *, force: bool = False, exclusive: bool = False,
                 protect: Iterable[str | os.PathLike] = (), what: str = "output folder"):
        self.path, self.force, self.what = Path(path), force, what
        if self.path.exists() and not self.path.is_dir():
            raise OutputRefused(f"{self.path}: exists and is not a folder; give the {what} a folder path")
        for p in protect:
            if p and (Path(p).exists() or Path(p).parent.exists()) and _inside(Path(p), self.path):
                raise OutputRefused(f"{self.path}: holds the database {p}; choose another {what}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputRefused(f"{self.path}: cannot create the {what} ({exc.strerror})") from exc
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise OutputRefused(f"{self.path}: the {what} is not writable (permission denied)")
        self.files = self._load_ledger()
        self._clean_partials()
        if exclusive and not force and not (self.path / LEDGER).exists():
            foreign = [c.name for c in sorted(self.path.iterdir())]
            if foreign:
                raise OutputRefused(
                    f"{self.path}: not empty and not written by Taomi (holds {', '.join(foreign[:5])}"
                    f"{', ...' if len(foreign) > 5 else ''}); choose a new or empty {what}, or {FORCE_HINT}")

    # -- the ledger ---------------------------------------------------------------------------
    def _load_ledger(self) -> dict[str, dict]:
        p = self.path / LEDGER
        if not p.exists():
            return {}
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            files = dict(data["files"]) if data.get("writer") == "taomi" else {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return {}
        for name in files:  # every name is checked before any is used: a hostile ledger deletes nothing
            check_name(self.path, name, str(p))
        return {name: entry for name, entry in files.items() if isinstance(entry, dict)}

    def _save_ledger(self) -> None:
        tmp = self.path / f"{LEDGER}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(json.dumps({"writer": "taomi", "files": self.files}, indent=1), encoding="utf-8")
        os.replace(tmp, self.path / LEDGER)

    def owns(self, name: str) -> bool:
        """Is `name` a file Taomi wrote here and nobody changed since? (A link never is.)"""
        entry, p = self.files.get(name), self.path / name
        if entry is None or p.is_symlink() or not p.is_file() or not _inside(p, self.path):
            return False
        st = p.stat()
        if st.st_size != entry.get("bytes"):
            return False
        return st.st_mtime_ns == entry.get("mtime_ns") or sha256(p) == entry.get("sha256")

    def _record(self, name: str, sha: str | None = None) -> None:
        st = (self.path / name).stat()
        self.files[name] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                            "sha256": sha or sha256(self.path / name)}

    # -- writing ------------------------------------------------------------------------------
    def check_writable(self, names: Iterable[str]) -> None:
        """Refuse (before any work) if a target name is a user's file or a folder."""
        for name in names:
            p = self.path / name
            if p.is_dir():
                raise OutputRefused(f"{p}: is a folder; Taomi will not replace it")
            if p.exists() and not self.force and not self.owns(name):
                raise OutputRefused(f"{p}: exists and was not written by Taomi; {FORCE_HINT}")

    def staging(self) -> Path:
        """A fresh hidden folder inside this one for a multi-file write (same filesystem)."""
        stage = self.path / f"{PARTIAL}{uuid.uuid4().hex[:12]}"
        stage.mkdir()
        (stage / MARKER).write_text(str(os.getpid()))
        return stage

    def _clean_partials(self) -> None:
        """Remove staging folders that killed runs left (never one a live process is using)."""
        for child in self.path.glob(f"{PARTIAL}*"):
            marker = child / MARKER
            if child.is_symlink() or marker.is_symlink():
                continue  # Taomi's staging folders are real folders: a link is not ours to follow
            if child.is_dir() and marker.is_file() and not pid_alive(marker.read_text().strip()):
                shutil.rmtree(child, ignore_errors=True)
        for child in self.path.glob(f"{LEDGER}.*.tmp"):
            child.unlink(missing_ok=True)

    def publish(self, stage: Path, names: list[str], last: str | None = None) -> None:
        """Move staged files into place (`last`, e.g. a manifest, after all the others), each
        by an atomic rename, recording them in the ledger first so a kill leaves no file that
        Taomi cannot later recognise as its own."""
        self.check_writable(names)
        order = [n for n in names if n != last] + ([last] if last in names else [])
        for name in order:
            fsync(stage / name)
            self.files[name] = {"bytes": (stage / name).stat().st_size, "mtime_ns": None,
                                "sha256": sha256(stage / name)}
        self._save_ledger()
        for name in order:
            os.replace(stage / name, self.path / name)
            self._record(name, self.files[name]["sha256"])
        self._save_ledger()
        fsync_dir(self.path)

    def write(self, name: str, fill: Callable[[Path], None]) -> Path:
        """Write one file: `fill(tmp_path)` writes it, then it is renamed into place."""
        self.check_writable([name])
        stage = self.staging()
        try:
            fill(stage / name)
            self.publish(stage, [name])
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        return self.write(name, lambda p: p.write_text(text, encoding="utf-8"))

    def write_bytes(self, name: str, data: bytes) -> Path:
        return self.write(name, lambda p: p.write_bytes(data))

    def remove_owned(self, names: Iterable[str]) -> list[str]:
        """Delete files Taomi wrote here (and only those); return what was deleted."""
        gone = []
        for name in names:
            check_name(self.path, name, str(self.path / LEDGER))
            if self.owns(name):
                (self.path / name).unlink()
                gone.append(name)
            self.files.pop(name, None)  # an edited file is the user's now: forgotten, kept
        self._save_ledger()
        return gone


def _file_target(path: str | os.PathLike, force: bool, what: str) -> tuple[OutputDir, str]:
    p = Path(path)
    if p.name in ("", ".", "..") or p.name == LEDGER:
        raise OutputRefused(f"{p}: not a file name for the {what}")
    return OutputDir(p.parent, force=force, what=f"folder of the {what}"), p.name


def check_file(path: str | os.PathLike, *, force: bool = False, what: str = "output file") -> None:
    """Refuse, before any work, a target that is a user's file (unless `force`) or a folder."""
    out, name = _file_target(path, force, what)
    out.check_writable([name])


def write_file(path: str | os.PathLike, fill: Callable[[Path], None], *, force: bool = False,
               what: str = "output file") -> Path:
    """Write one named file (atomically) unless it is a user's file and not `force`."""
    out, name = _file_target(path, force, what)
    return out.write(name, fill)


def fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

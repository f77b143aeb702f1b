"""The floors of ARCHITECTURE.md, checked on every `make test` (issue 13): import-linter's
contracts (pyproject.toml: layers pointing down, no framework imports below the face, no import
cycles inside a package), and no SQL text outside `warehouse/`."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["taomi", "flows", "evalsets", "dedup", "curation", "scaling"]
# Upper-case SQL statements as this code base writes them (prose "select ... from" is not matched).
SQL = re.compile(r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b|"
                 r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+)?(?:TABLE|VIEW|INDEX)\b|\bCOPY\s*\(|\bDROP\s+TABLE\b")


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extra (pip install -e '.[test]')"
    r = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout and "3 kept" in r.stdout


def sql_outside_warehouse() -> list[str]:
    found = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.strip()[:60]!r}")
    return found


def test_no_sql_outside_the_warehouse():
    assert sql_outside_warehouse() == []


def test_the_sql_check_would_find_sql(tmp_path, monkeypatch):
    """The scanner itself works: SQL placed in a module above the warehouse is reported."""
    fake = tmp_path / "flows"
    fake.mkdir()
    (fake / "leak.py").write_text('Q = """SELECT id\n  FROM documents WHERE corpus = ?"""\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ["flows"])
    assert sql_outside_warehouse() == ["flows/leak.py:1: 'SELECT id\\n  FROM documents WHERE corpus = ?'"]

"""Stored XSS (issue 12, item 2): a script payload in every user-controlled field of an eval run
(set name, model, ids, inputs, targets, predictions, slices, gate names, training documents) is
rendered as text. Checked in the DOM a real headless Chromium builds, and in report.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.eval_task import evaluate

PWN = "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
SCRIPT = "<script>document.body.setAttribute('data-pwned','script')</script>"
PAYLOAD = f"{PWN}{SCRIPT}|**bold**"


PWNED = re.compile(r"<body[^>]*data-pwned=")


def dump_dom(chromium: str, page: Path, tmp_path: Path) -> str:
    """The DOM after the page's scripts ran, as headless Chromium serialises it."""
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
        check=False, capture_output=True, text=True, timeout=120).stdout


def _chromium() -> str | None:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and os.environ.get("CI"):
        pytest.fail("CI must run the browser check: .ci/run installs Debian's chromium")
    return path


@pytest.fixture
def hostile_report(tmp_path, ingest_files):
    db = str(tmp_path / "x.duckdb")
    train = tmp_path / "train.jsonl"
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
             "mu", "nu", "xi", "omicron"]
    train.write_text("".join(json.dumps({"id": f"{PAYLOAD}-doc{i}", "text": " ".join(words[i:] + words[:i]) + f" {PAYLOAD}",
                                         "label": PAYLOAD}) + "\n" for i in range(6)))
    ingest_files(db, [train], "train")
    items = [{"id": f"{PAYLOAD}{i}", "input": " ".join(words) + f" {PAYLOAD}", "target": f"{PAYLOAD}t{i % 2}",
              "slices": [f"{PAYLOAD}s{i % 3}"]} for i in range(12)]
    es = tmp_path / f"{'set'}.jsonl"
    es.write_text("".join(json.dumps(x) + "\n" for x in items))
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": x["id"], "prediction": PAYLOAD if i % 2 else x["target"]}) + "\n"
                             for i, x in enumerate(items)))
    gates = tmp_path / "gates.toml"
    gates.write_text(f"[[gate]]\nname = {json.dumps(PAYLOAD)}\nslice = \"*\"\nmetric_min = 0.99\nmin_n = 1\naction = \"block\"\n")
    out = tmp_path / "report"
    r = evaluate(db, es, preds, model=PAYLOAD, train_corpus="train", gates_path=gates, outdir=out,
                 set_name=PAYLOAD, n_boot=50)
    assert r["gates_failed"]  # the failed-gates paragraph (the reported hole) is rendered
    return out


def test_report_html_renders_payloads_as_text_in_chromium(hostile_report, tmp_path):
    html = (hostile_report / "report.html").read_text()
    assert "<img src=x" not in html and "<script>document" not in html
    assert "&lt;img src=x onerror=" in html
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed here (CI installs it)")
    # Control: the same payload unescaped does run in this browser, so the check below can fail.
    control = tmp_path / "control.html"
    control.write_text(f"<!doctype html><html><body><p>{PAYLOAD}</p></body></html>")
    assert PWNED.search(dump_dom(chromium, control, tmp_path))
    dom = dump_dom(chromium, hostile_report / "report.html", tmp_path)
    assert "<h1>Hard-set report:" in dom  # the page rendered
    assert not PWNED.search(dom)  # no payload ran
    assert '<img src="x"' not in dom and "<script>" not in dom  # and none became an element
    assert dom.count("&lt;img src=x onerror=") >= 10  # every field shows the payload as text


def test_report_md_escapes_markup_and_table_syntax(hostile_report):
    md = (hostile_report / "report.md").read_text()
    assert "<img" not in md and "<script" not in md and "&lt;img" in md
    for row in [line for line in md.splitlines() if line.startswith("| ")]:
        assert row.count(" | ") == 3  # a '|' inside a slice name does not add a column

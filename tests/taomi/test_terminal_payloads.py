"""User text is never markup and never terminal control (issue 29, item 2).

Hostile corpus names, ids, labels, annotators, file names, quarantined raw lines, model, slice,
gate and fit names go through every command that echoes them. The captured output must hold no
ESC byte, no C1 control, no bidirectional override and no carriage return (none of which Taomi
writes itself when not on a terminal); each payload's rich markup must appear literally (shown,
not interpreted: `[link=...]` interpreted would vanish from the text); and no command may end in a
traceback. The --json forms must stay valid JSON with the same characters escaped.
"""

from __future__ import annotations

import json
import re

import pytest

LINK = "[link=https://evil.example/]click me[/link]"
HIDDEN = "[black on black]hidden[/]"
CLOSE = "x[/bold]y[/]"
ESC_CLEAR = "\x1b[2J\x1b[H"
OSC8 = "\x1b]8;;https://evil.example/\x07here\x1b]8;;\x07"
C1 = "\x9b31m"
BIDI = "\u202etxt.exe"
CR = "\rfake ok"
CONTROL = [ESC_CLEAR, OSC8, C1, BIDI, CR]
BAD = re.compile("[\x1b\x80-\x9f\u202a-\u202e\u2066-\u2069\r]")

CORPUS = f"c{CLOSE}{LINK}{ESC_CLEAR}"
FILE_NAME = f"docs[reverse]x[blink]{C1}\x1b[8m.jsonl"  # no "/" in a file name
MODEL = f"m{HIDDEN}{OSC8}"
FIT = f"fit{LINK}{BIDI}"
GATE = f"gate{HIDDEN}{ESC_CLEAR}"
SLICE = f"slice{CLOSE}{CR}"


def shown(text: str) -> str:
    from taomi.output import visible

    return visible(text)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("hostile")
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho"]
    rows = []
    for i in range(60):
        text = " ".join(words[(i + k) % len(words)] for k in range(40)) + f" number {i % 20}"
        for a, ann in enumerate([f"ann{HIDDEN}", f"ann{ESC_CLEAR}", f"ann{LINK}"]):
            label = [f"lab{CLOSE}", f"lab{OSC8}"][(i + (a == 2 and i % 5 == 0)) % 2]
            rows.append(json.dumps({"id": f"id{i}{LINK if i % 7 == 0 else ''}{C1 if i % 11 == 0 else ''}",
                                    "text": text, "label": label, "annotator": ann}))
    rows.append(f'{{"id": "q{CLOSE}", "text": 5}} {ESC_CLEAR}{LINK}')  # quarantined, raw line shown
    corpus = tmp / FILE_NAME
    corpus.write_text("\n".join(rows) + "\n")
    items = [{"id": f"e{i}{CLOSE if i % 3 == 0 else ''}{BIDI if i % 4 == 0 else ''}",
              "input": " ".join(words[(i + k) % len(words)] for k in range(20)), "target": ["yes", "no"][i % 2],
              "slices": [SLICE] if i % 2 else []} for i in range(24)]
    (tmp / "set.jsonl").write_text("".join(json.dumps(x) + "\n" for x in items))
    (tmp / "prev.jsonl").write_text("".join(json.dumps({"id": x["id"], "prediction": x["target"]}) + "\n"
                                            for x in items))
    (tmp / "pred.jsonl").write_text("".join(json.dumps({"id": x["id"], "prediction": "yes"}) + "\n" for x in items))
    (tmp / "gates.toml").write_text(f'[[gate]]\nname = {json.dumps(GATE)}\nslice = "all"\nmetric_min = 0.99\nmin_n = 1\n')
    (tmp / "obs.csv").write_text("N,D,loss\n" + "".join(
        f"{n},{d},{1.7 + 400 / n ** 0.34 + 410 / d ** 0.28}\n" for n in (1e8, 3e8, 1e9, 3e9) for d in (2e9, 6e9, 2e10)))
    return {"tmp": tmp, "db": str(tmp / "w.duckdb"), "corpus": corpus}


def check(r, *literals: str, codes=(0,)) -> None:
    out = r.output
    assert r.code in codes, (r.code, out[-3000:])
    assert "Traceback" not in out, out[-3000:]
    bad = BAD.findall(out)
    assert not bad, f"raw control characters reached the terminal: {bad[:5]!r}"
    flat = re.sub(r"[\s│┃]+", " ", out)  # a table may wrap a long cell or title over lines
    for lit in literals:  # the payload's markup is printed as text, its controls shown visibly
        assert re.sub(r"\s+", " ", shown(lit)) in flat, (lit, out[-3000:])


def steps(h: dict) -> list[tuple[list[str], tuple[str, ...], tuple[int, ...]]]:
    t = h["tmp"]
    return [
        (["ingest", "-c", CORPUS, str(h["corpus"])], (CORPUS, FILE_NAME), (0,)),
        (["corpora"], (CORPUS,), (0,)),
        (["stats", CORPUS], (CORPUS,), (0,)),
        (["quarantine", CORPUS], (CLOSE, LINK, ESC_CLEAR, FILE_NAME), (0,)),
        (["dedup", CORPUS], (LINK,), (0,)),
        (["dedup-query", CORPUS, "--text", "alpha beta gamma delta epsilon zeta eta theta iota kappa"], (), (0,)),
        (["labels", CORPUS, "--bootstrap", "20"], (f"ann{HIDDEN}", f"ann{ESC_CLEAR}", f"lab{CLOSE}"), (0,)),
        (["curriculum", CORPUS], (CORPUS,), (0,)),
        (["export", CORPUS, str(t / "shards")], (), (0,)),
        (["runs"], (CORPUS,), (0,)),
        (["eval", str(t / "set.jsonl"), str(t / "prev.jsonl"), "--model", "before", "--out", str(t / "r0"),
          "--train-corpus", CORPUS], (SLICE,), (0,)),
        (["eval", str(t / "set.jsonl"), str(t / "pred.jsonl"), "--model", MODEL, "--out", str(t / "r1"),
          "--gates", str(t / "gates.toml"), "--train-corpus", CORPUS], (MODEL, GATE, SLICE), (3,)),
        (["hardset", "build", f"hard{LINK}", "--corpus", CORPUS, "--out", str(t / "hard.jsonl")], (LINK,), (0,)),
        (["fit", str(t / "obs.csv"), "--name", FIT], (FIT,), (0,)),
        (["fits"], (FIT,), (0,)),
        (["plan", "--fit", FIT, "--flops", "1e21"], (FIT,), (0,)),
        # errors that echo user text
        (["stats", f"none{LINK}{ESC_CLEAR}"], (LINK, ESC_CLEAR), (2,)),
        (["plan", "--fit", f"none{HIDDEN}{OSC8}", "--flops", "1e21"], (HIDDEN, OSC8), (2,)),
        (["ingest", "-c", CORPUS, str(t / f"absent[reverse]x{ESC_CLEAR}.jsonl")], ("[reverse]x", ESC_CLEAR), (2,)),
    ]


def test_hostile_text_is_shown_never_interpreted_by_any_command(hostile, taomi_cli, record_fault):
    n = 0
    for args, literals, codes in steps(hostile):
        r = taomi_cli("--db", hostile["db"], *args, env={"COLUMNS": "400"})
        check(r, *literals, codes=codes)
        n += 1
    record_fault("terminal", commands=n, interpreted=0, tracebacks=0)


@pytest.mark.parametrize("args", [["corpora"], ["quarantine", CORPUS], ["runs"], ["fits"], ["stats", CORPUS]])
def test_json_output_escapes_the_same_characters_and_stays_valid(hostile, taomi_cli, args):
    r = taomi_cli("--db", hostile["db"], *args, "--json")
    if r.code == 2 and "no corpus" in r.err:  # the ordering test has not ingested yet
        pytest.skip("runs after the command test")
    assert r.code == 0 and not BAD.findall(r.out), r.output
    json.loads(r.out)


def test_safe_console_shows_markup_and_controls_as_text():
    import io

    from taomi.output import SafeConsole, styled

    buf = io.StringIO()
    c = SafeConsole(file=buf, width=300, force_terminal=False)
    c.print(f"{LINK} {HIDDEN} :skull: {ESC_CLEAR} {C1} {BIDI}")
    c.print(styled(("error:", "bold red"), f" {CLOSE}{OSC8}"))
    with c.status(f"{LINK}{ESC_CLEAR}"):
        pass
    out = buf.getvalue()
    assert not BAD.findall(out)
    for lit in (LINK, HIDDEN, ":skull:", CLOSE, ESC_CLEAR, OSC8, C1, BIDI):
        assert shown(lit) in out

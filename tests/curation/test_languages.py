"""Per-document script and language (issue 24, item 4), on real paragraphs: Debian's translated
manual pages and Thai message catalogs. Detected once per document, shown by `stats --by`, and a
corpus mostly in scripts without spaces that was deduplicated with whitespace words gets a warning."""

from __future__ import annotations

import json

import pytest

from curation.languages import detect_languages, dominant_script

EXPECT = {"zh_CN": ("Han", "zh"), "ja": ("Kana", "ja"), "ko": ("Hangul", "ko"), "th": ("Thai", "th"),
          "en": ("Latin", "en"), "de": ("Latin", "de"), "ru": ("Cyrillic", "ru")}


@pytest.fixture(scope="module")
def real(bench_module):
    mb = bench_module("multilingual_bench")
    out = {lang: mb.paragraphs(lang) for lang in EXPECT}

    def cyrillic(p: str) -> bool:  # Debian's Russian manuals keep some paragraphs in English
        letters = [c for c in p if c.isalpha()]
        return sum("\u0400" <= c <= "\u04ff" for c in letters) > len(letters) / 2

    out["ru"] = [p for p in out["ru"] if cyrillic(p)]
    out = {k: v[:40] for k, v in out.items()}
    if any(len(v) < 20 for v in out.values()):
        pytest.skip("the real multilingual text is not on this machine")
    return out


def test_script_and_language_of_real_paragraphs(real):
    for lang, paras in real.items():
        script, code = EXPECT[lang]
        scripts = [dominant_script(p) for p in paras]
        langs = detect_languages(paras)
        assert sum(s == script for s in scripts) / len(paras) >= 0.95, (lang, scripts)
        floor = 0.95 if script != "Latin" and script != "Cyrillic" else 0.7  # manual pages: option lists
        assert sum(c == code for c in langs) / len(paras) >= floor, (lang, langs)
    assert dominant_script("12345 !!!") == "none"


def test_languages_command_stats_and_warning(real, tmp_path, taomi_cli):
    rows = [{"id": f"{lang}-{i}", "text": p} for lang in ("zh_CN", "ja", "ko", "en") for i, p in enumerate(real[lang][:20])]
    src = tmp_path / "m.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    db = str(tmp_path / "m.duckdb")
    assert taomi_cli("--db", db, "ingest", str(src), "-c", "m", "--tokenizer", "none").code == 0
    assert taomi_cli("--db", db, "dedup", "m", "--no-script-units").code == 0
    r = taomi_cli("--db", db, "stats", "m", "--by", "language")
    assert r.code == 2 and "no detected language yet: run `taomi languages m` first" in r.output
    r = taomi_cli("--db", db, "languages", "m", "--json", "--quiet")
    out = json.loads(r.out)
    assert out["detected_now"] == 80 and out["scripts"]["Han"] == 20 and out["unit_script_share"] == 0.75
    assert "re-run `taomi dedup m` without --no-script-units" in out["warning"]
    again = json.loads(taomi_cli("--db", db, "languages", "m", "--json", "--quiet").out)
    assert again["detected_now"] == 0 and again["scripts"] == out["scripts"]
    by = {x["value"]: x["documents"] for x in json.loads(taomi_cli("--db", db, "stats", "m", "--by", "script",
                                                                   "--json").out)}
    assert by == {"Han": 20, "Kana": 20, "Hangul": 20, "Latin": 20}
    assert taomi_cli("--db", db, "dedup", "m").code == 0  # the default units: no warning
    assert json.loads(taomi_cli("--db", db, "languages", "m", "--json").out)["warning"] is None

"""How many units of a script carry what 13 English words carry: the evidence for the
contamination run per script (`evalsets.contamination.RUN_BY_SCRIPT`).

GPT-3's contamination unit is 13 words in a row (Brown et al. 2020, app. C). Scripts written
without spaces have no words; Taomi counts their characters as units. To ask for the same amount of
shared text in every script, the run an item's match must cover is 13 x (units per English word),
measured here on real parallel text: every message of Debian's installed message catalogues
(`/usr/share/locale/*/LC_MESSAGES/*.mo`; msgid English, msgstr the translation) with 8+ English
words, units counted on both sides by Taomi's own contamination units (`text_units`: a word of a
spaced script is one unit, a character of a script without spaces is one), grouped by the
translation's dominant script.

A second genre beside it: Debian's translated manual pages (`/usr/share/man/{zh_CN,zh_TW,ja,ko}`)
against the English page of the same name, whole pages (groff requests dropped), median of the
per-page ratios (a translation may follow an older page: the median is robust to a few).

    .venv/bin/python bench/parallel_units.py [--min-words 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realtext import catalogue

from curation.languages import UNIT_SCRIPTS, dominant_script
from evalsets.contamination import N_GRAM, text_units


def pairs(locale: Path):
    for f in sorted((locale / "LC_MESSAGES").glob("*.mo")):
        for k, v in catalogue(f).items():
            if isinstance(k, str) and k and isinstance(v, str) and v:
                yield k, v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-words", type=int, default=8)
    a = ap.parse_args()
    by: dict[str, list[tuple[int, int]]] = {}
    langs: dict[str, set[str]] = {}
    for locale in sorted(Path("/usr/share/locale").iterdir()):
        if not locale.is_dir():
            continue
        for en, tr in pairs(locale):
            script = dominant_script(tr)
            if script not in UNIT_SCRIPTS and script != "Latin":
                continue
            e = len(text_units(en))
            if e < a.min_words:
                continue
            by.setdefault(script, []).append((e, len(text_units(tr))))
            langs.setdefault(script, set()).add(locale.name)
    print(f"{'script':<8} {'messages':>9} {'units/word':>10} {'median':>7} {'x13':>5}  locales")
    for script, rows in sorted(by.items(), key=lambda kv: -len(kv[1])):
        e, t = np.array(rows).T
        ratio = t.sum() / e.sum()
        print(f"{script:<8} {len(rows):>9,} {ratio:>10.2f} {np.median(t / e):>7.2f} {round(N_GRAM * ratio):>5}  "
              f"{' '.join(sorted(langs[script])[:12])}{' ...' if len(langs[script]) > 12 else ''}")
    man_ratios()


def man_ratios() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import multilingual_bench as mb

    english = {name: " ".join(paras) for name, paras in mb.man_pages("en", 1, 10**9)}
    print(f"\n{'man pages':<10} {'pages':>6} {'units/word':>10} {'x13':>5}  (median of per-page ratios)")
    for lang in ("zh_CN", "zh_TW", "ja", "ko"):
        ratios = []
        for name, paras in mb.man_pages(lang, 1, 10**9):
            en = english.get(name.split("/", 1)[-1])
            if not en or not paras:
                continue
            e, t = len(text_units(en)), len(text_units(" ".join(paras)))
            if e >= 200:
                ratios.append(t / e)
        if ratios:
            r = float(np.median(ratios))
            print(f"{lang:<10} {len(ratios):>6} {r:>10.2f} {round(N_GRAM * r):>5}")


if __name__ == "__main__":
    main()

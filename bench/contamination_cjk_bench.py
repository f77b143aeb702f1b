"""Contamination on real Chinese and Japanese text (issue 24): planted copies of each kind, clean
items and near-misses, at several n, beside whitespace 13-grams (lm-evaluation-harness's
decontamination splits on whitespace) in the same run.

Real text, never generated: the paragraphs of Debian's translated manual pages
(`/usr/share/man/{zh_CN,ja}`, groff requests dropped) and the translated messages of Debian's
message catalogues (`/usr/share/locale/{zh_CN,ja}/LC_MESSAGES/*.mo`, 40+ characters), in their
script for at least half of their characters. The pool is shuffled and cut in two: eval items
come from one half; the training corpus is the other half, four pieces to a document.

Truth units (written here, apart from Taomi's code): after NFKC and casefold, each character of a
script written without spaces is a unit, and each run of other letters and digits is one (a word);
whitespace and punctuation separate them. What counts as a leak follows the rule under test: a
shared passage as long as GPT-3's 13 English words, which is R units of the language's script
(evalsets.contamination.RUN_BY_SCRIPT, measured on parallel text by bench/parallel_units.py:
Chinese 21, Japanese 34). Clean means clean of such passages: an item that shares R units in a row
with the training corpus or with another item is not used, and how many were set aside is printed
(with `--clean-run 30` the older, stricter definition of this bench). Eval items have at least 2R
units. Kinds planted into the training corpus (one copy each, inside a host document unless
"verbatim"):

  verbatim     the item as its own training document
  embedded     the item in the middle of a host document
  partial      R to 1.5R units of the item, in a row (the shortest leak the rule is for)
  reformatted  ASCII punctuation made full-width and full-width made ASCII
  line-wrapped hard line breaks every 18-30 characters, mid-word
  spaced       a space between every two characters (PDF extraction's artefact)
  converted    (zh only) OpenCC simplified-to-traditional; not a target: --to-simplified is dedup's
  near-miss    every 10th unit replaced: no 10 units in a row survive (clean)
  unplanted    nothing planted (clean)

Beside the rule: plain n-grams of each --n (any n units in a row), and whitespace 13-grams.

    .venv/bin/python bench/contamination_cjk_bench.py [--per-kind 25] [--seed 0] [--n 13 21 32]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import multilingual_bench as mb
from realtext import catalogue

from evalsets.contamination import RUN_BY_SCRIPT, ngram_overlap

KINDS = ("verbatim", "embedded", "partial", "reformatted", "line-wrapped", "spaced", "converted")
CLEAN = ("near-miss", "unplanted")
RUN = {"zh_CN": RUN_BY_SCRIPT["Han"], "zh_TW": RUN_BY_SCRIPT["Han"], "ja": RUN_BY_SCRIPT["Kana"],
       "ko": RUN_BY_SCRIPT["Hangul"], "th": RUN_BY_SCRIPT["Thai"]}
_FULL = str.maketrans({",": "，", ".": "。", ":": "：", ";": "；", "(": "（", ")": "）", "!": "！", "?": "？",
                       "，": ",", "。": ".", "：": ":", "；": ";", "（": "(", "）": ")", "！": "!", "？": "?"})


_NO_SPACES = ("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA", "HANGUL", "THAI")


def unit_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each truth unit of a text: a character of a script without spaces, or a run
    of other letters and digits."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if unicodedata.name(c, "").startswith(_NO_SPACES):
            out.append((i, i + 1))
            i += 1
        elif c.isalnum():
            j = i + 1
            while j < len(text) and text[j].isalnum() and not unicodedata.name(text[j], "").startswith(_NO_SPACES):
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def truth_units(text: str) -> list[str]:
    t = unicodedata.normalize("NFKC", text).casefold()
    return [t[a:b] for a, b in unit_spans(t)]


def grams(text: str, k: int) -> set[tuple[str, ...]]:
    u = truth_units(text)
    return {tuple(u[i:i + k]) for i in range(len(u) - k + 1)}


def catalogue_messages(lang: str, min_chars: int = 40) -> list[str]:
    out = []
    for f in sorted((Path("/usr/share/locale") / lang / "LC_MESSAGES").glob("*.mo")):
        cat = catalogue(f)
        out += [" ".join(v.split()) for k, v in cat.items() if k and isinstance(v, str) and len(v) >= min_chars]
    return out


def pool(lang: str) -> list[str]:
    texts = mb.man_paragraphs(lang) + catalogue_messages(lang)
    return [t for t in dict.fromkeys(texts) if mb.script_share(t) >= 0.5]


def plant(kind: str, item: str, rng: random.Random, run: int = 21) -> str:
    if kind in ("verbatim", "embedded"):
        return item
    if kind == "partial":
        spans = unit_spans(item)
        size = min(len(spans), rng.randint(run, run * 3 // 2))
        start = rng.randrange(0, len(spans) - size + 1)
        return item[spans[start][0]:spans[start + size - 1][1]]
    if kind == "reformatted":
        return item.translate(_FULL)
    if kind == "line-wrapped":
        out, i = [], 0
        while i < len(item):
            step = rng.randint(18, 30)
            out.append(item[i:i + step])
            i += step
        return "\n".join(out)
    if kind == "spaced":
        return " ".join(c for c in item if not c.isspace())
    if kind == "converted":
        import opencc

        return opencc.OpenCC("s2t").convert(item)
    if kind == "near-miss":
        chars = [c for c in item if unicodedata.category(c).startswith("L")]
        out, k = [], 0
        for c in item:
            if not c.isspace() and not unicodedata.category(c).startswith("P"):
                k += 1
                if k % 10 == 0:
                    c = rng.choice([x for x in chars if x != c] or ["〇"])
            out.append(c)
        return "".join(out)
    raise ValueError(kind)


def build(lang: str, per_kind: int, seed: int, clean_run: int | None = None):
    """Eval items, their kinds, the training corpus, and how many candidates were set aside.
    clean_run: units in a row that make a shared passage (default: the rule's run, RUN[lang])."""
    run = RUN.get(lang, RUN_BY_SCRIPT["Han"])
    clean_run = clean_run or run
    rng = random.Random(seed)
    texts = pool(lang)
    rng.shuffle(texts)
    half = len(texts) // 2
    candidates, host_pieces = texts[:half], texts[half:]
    hosts = ["\n".join(host_pieces[i:i + 4]) for i in range(0, len(host_pieces), 4)]
    seen = set().union(*(grams(h, clean_run) for h in hosts))
    kinds = [k for k in KINDS if lang.startswith("zh") or k != "converted"] + list(CLEAN)
    items, shared = [], 0
    for t in candidates:
        if len(truth_units(t)) < 2 * run:
            continue
        g = grams(t, clean_run)
        if g & seen:
            shared += 1
            continue
        items.append(t)
        seen |= g
        if len(items) == per_kind * len(kinds):
            break
    per = len(items) // len(kinds)
    kind_of = [k for k in kinds for _ in range(per)]
    items = items[:len(kind_of)]
    training = list(hosts)
    free = rng.sample(range(len(hosts)), len(hosts))
    hosted: set[int] = set()
    for item, kind in zip(items, kind_of):
        if kind == "unplanted":
            continue
        copy = plant(kind, item, rng, run)
        if kind == "verbatim":
            training.append(copy)
        else:
            if not free:  # more copies than hosts: a host takes a second copy, after its text (in
                # its middle, the first copy would be cut in two)
                free = rng.sample(range(len(hosts)), len(hosts))
            h = free.pop()
            if h in hosted:
                training[h] = training[h] + "\n" + copy
            else:
                cut = len(training[h]) // 2
                training[h] = training[h][:cut] + copy + training[h][cut:]
                hosted.add(h)
    return items, kind_of, training, shared


def whitespace_13(items: list[str], training: list[str]) -> np.ndarray:
    have = set()
    for t in training:
        w = t.lower().split()
        have.update(tuple(w[i:i + 13]) for i in range(len(w) - 12))
    out = []
    for x in items:
        w = x.lower().split()
        out.append(any(tuple(w[i:i + 13]) in have for i in range(len(w) - 12)))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", nargs="+", default=["zh_CN", "ja"])
    ap.add_argument("--per-kind", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, nargs="+", default=[13, 21, 32])
    ap.add_argument("--clean-run", type=int, default=None,
                    help="units in a row that make a shared passage (default: the rule's run for the language)")
    a = ap.parse_args()
    for lang in a.lang:
        items, kind_of, training, shared = build(lang, a.per_kind, a.seed, a.clean_run)
        if not items:
            print(f"{lang}: no real text on this machine")
            continue
        kinds = list(dict.fromkeys(kind_of))
        print(f"\n{lang}: {len(items)} real eval items ({len(items) // len(kinds)} per kind), {len(training)} "
              f"training documents ({sum(map(len, training)) / 1e6:.2f} M characters); {shared} candidate items "
              f"set aside for sharing {a.clean_run or RUN[lang]}+ units with the training corpus; rule's run "
              f"{RUN[lang]} units")
        batches = [(np.arange(len(training)), training)]
        results, status = {}, {}
        columns = ["default", *a.n]  # default: 13-grams, a run of the item's script's units; then plain n
        for col in columns:
            t = time.perf_counter()
            found = ngram_overlap(items, batches) if col == "default" else \
                ngram_overlap(items, batches, n=col, per_script=False)
            results[col] = np.array([f["status"] == "contaminated" for f in found])
            status[col] = [f["status"] for f in found]
            results[col, "s"] = time.perf_counter() - t
        ws = whitespace_13(items, training)
        kind = np.array(kind_of)
        print(f"{'kind':<13} {'n':>3} " + " ".join(f"{c if c == 'default' else 'n=' + str(c):>7}" for c in columns)
              + f" {'ws 13':>7}")
        for k in kinds:
            sel = kind == k
            label = "FP rate" if k in CLEAN else "recall"
            print(f"{k:<13} {sel.sum():>3} " + " ".join(f"{results[c][sel].mean():>7.3f}" for c in columns)
                  + f" {ws[sel].mean():>7.3f}   {label}")
        planted = np.isin(kind, [k for k in KINDS if k != "converted"])
        clean = np.isin(kind, CLEAN)
        print(f"{'all planted':<13} {planted.sum():>3} " + " ".join(f"{results[c][planted].mean():>7.3f}" for c in columns)
              + f" {ws[planted].mean():>7.3f}   recall (converted left out)")
        print(f"{'all clean':<13} {clean.sum():>3} " + " ".join(f"{results[c][clean].mean():>7.3f}" for c in columns)
              + f" {ws[clean].mean():>7.3f}   FP rate")
        corpus13 = set().union(*(grams(t, 13) for t in training))
        clause = sum(bool(grams(x, 13) & corpus13) for x, k in zip(items, kind_of) if k in CLEAN)
        print(f"clean items that share a passage of 13 or more units (and fewer than the run): {clause} of "
              f"{clean.sum()}")
        for c in columns:
            unchecked = sum(s in ("too_short", "low_information") for s in status[c])
            print(f"{c}: {unchecked} items reported uncheckable, {len(items) - unchecked} checked, none left "
                  f"unreported ({results[c, 's']:.2f} s)")


if __name__ == "__main__":
    main()

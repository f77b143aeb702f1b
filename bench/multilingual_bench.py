"""Near-dedup in every script, on real text (issue 24): the default settings against whitespace
words, with an independent exact character-5-gram Jaccard as truth.

    .venv/bin/python bench/multilingual_bench.py [--per-lang 150] [--seed 0]

Real paragraphs, never generated: Debian's translated manual pages (`/usr/share/man/{zh_CN,zh_TW,
ja,ko,de,ru}/man*/*.gz` and English `/usr/share/man/man1`, groff requests dropped) and, for Thai,
whose manuals Debian does not ship, the Thai message catalogs of Debian packages
(`/usr/share/locale/th/LC_MESSAGES/*.mo`, read with Python's `gettext`; messages of 40+ characters
joined three at a time). For each language, `--per-lang` paragraphs and as many edited copies:
one to three planted edits each (characters substituted, inserted or deleted, two sentences
swapped, a spaced copy with a space between every character as PDF extraction leaves it, ASCII
punctuation swapped for full-width), so the pairs spread across Jaccard 0.5-1.0.

Truth: a pair's Jaccard over character 5-grams after NFKC, casefold and removing whitespace and
punctuation (written here, apart from Taomi's code). Scored at threshold 0.8: recall on the pairs
with truth >= 0.8; precision of the pairs found, counting one right when its truth is >= 0.75
(the two measures fold punctuation slightly differently). Side by side in the same run: Taomi's
defaults (characters are the units of scripts without spaces), Taomi with `script_units=False`
(whitespace words, as before), datasketch MinHashLSH over whitespace-word 5-grams, and, with
`--datatrove-python PATH` (an interpreter with datatrove and its word tokenizers installed),
datatrove's MinHash with its per-language tokenizer (jieba through spaCy for Chinese, SudachiPy
for Japanese, Kiwi for Korean, PyThaiNLP for Thai, spaCy for the others; bench/datatrove_pairs.py).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from realtext import catalogue

MAN = Path("/usr/share/man")
LANGS = ("zh_CN", "zh_TW", "ja", "ko", "th", "en", "de", "ru")
_GROFF_ESCAPE = re.compile(r"\\f[BIRP]|\\f\(..|\\\(..|\\[-&e|^ ]|\\s[-+]?\d")


def man_pages(lang: str, min_chars: int = 60, max_chars: int = 600) -> list[tuple[str, list[str]]]:
    """(page file name, its paragraphs of min_chars..max_chars, groff requests dropped) per page."""
    root = MAN / "man1" if lang == "en" else MAN / lang
    pages = []
    for f in sorted(root.rglob("*.gz")):
        try:
            with gzip.open(f, "rt", encoding="utf-8", errors="strict") as fh:
                raw = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        out: list[str] = []
        para: list[str] = []
        for line in raw.splitlines() + [".PP"]:
            if line.startswith((".", "'")) or not line.strip():
                text = " ".join(para).strip()
                if min_chars <= len(text) <= max_chars:
                    out.append(text)
                para = []
                continue
            para.append(_GROFF_ESCAPE.sub("", line).strip())
        pages.append((str(f.relative_to(root)), out))
    return pages


def man_paragraphs(lang: str, min_chars: int = 60, max_chars: int = 600) -> list[str]:
    return list(dict.fromkeys(p for _, paras in man_pages(lang, min_chars, max_chars) for p in paras))


def thai_messages(min_chars: int = 40) -> list[str]:
    msgs = []
    for f in sorted(Path("/usr/share/locale/th/LC_MESSAGES").glob("*.mo")):
        for v in catalogue(f).values():  # msgid -> msgstr: the translated (Thai) strings
            if isinstance(v, str) and len(v) >= min_chars and re.search("[\u0e01-\u0e5b]{10}", v):
                msgs.append(" ".join(v.split()))
    msgs = list(dict.fromkeys(msgs))
    return [" ".join(msgs[i:i + 3]) for i in range(0, len(msgs) - 2, 3)]


def script_share(text: str) -> float:
    """Share of the non-space characters that belong to scripts written without spaces."""
    from dedup.shingle import is_unit

    chars = [c for c in text if not c.isspace()]
    return sum(is_unit(c) for c in chars) / len(chars) if chars else 0.0


def zh_twins(min_chars: int = 30) -> list[tuple[str, str]]:
    """(simplified, traditional) translations of the same message: the zh_CN and zh_TW catalogs of
    the same Debian package, matched by msgid."""
    out = []
    for f in sorted(Path("/usr/share/locale/zh_TW/LC_MESSAGES").glob("*.mo")):
        g = Path("/usr/share/locale/zh_CN/LC_MESSAGES") / f.name
        if not g.exists():
            continue
        tw, cn = catalogue(f), catalogue(g)
        for k, v in tw.items():
            if isinstance(k, str) and isinstance(v, str) and isinstance(cn.get(k), str) and len(v) >= min_chars \
                    and cn[k] != v:
                out.append((" ".join(cn[k].split()), " ".join(v.split())))
    return out


def truth_t2s(text: str) -> set[str]:
    from dedup.shingle import to_simplified

    return truth_grams(to_simplified(text))


def twins_row(limit: int, seed: int) -> None:
    """Simplified vs traditional twins: recall on the pairs whose Jaccard after conversion >= 0.85."""
    pairs = zh_twins()
    random.Random(seed).shuffle(pairs)
    pairs = pairs[:limit]
    texts = [a for a, _ in pairs] + [b for _, b in pairs]
    n = len(pairs)
    truth = {(i, i + n): jaccard(truth_t2s(a), truth_t2s(b)) for i, (a, b) in enumerate(pairs)}
    pos = {p for p, j in truth.items() if j >= 0.85}
    from dedup.config import DedupConfig
    from dedup.pipeline import near_duplicates, signatures_for

    for name, cfg in (("default", DedupConfig()), ("--to-simplified", DedupConfig(to_simplified=True))):
        n_sh, sigs = signatures_for(texts, cfg)
        ids = np.arange(len(texts), dtype=np.int64)
        res = near_duplicates(ids, n_sh, sigs, {i: float(i) for i in range(len(texts))},
                              lambda d: [texts[i] for i in d], cfg)
        found = {(int(min(a, b)), int(max(a, b))) for a, b in res.edges}
        print(f"zh_CN/zh_TW twins ({n} message pairs, {len(pos)} with J >= 0.85 after t2s): {name} recall "
              f"{len(found & pos) / max(len(pos), 1):.3f}")


def paragraphs(lang: str) -> list[str]:
    """Real paragraphs in the language: for the CJK and Thai sets, those mostly in their script
    (the translated manuals keep some paragraphs in English)."""
    paras = thai_messages() if lang == "th" else man_paragraphs(lang)
    if lang in ("zh_CN", "zh_TW", "ja", "ko", "th"):
        paras = [p for p in paras if script_share(p) >= 0.5]
    return paras


_SENT = re.compile(r"(?<=[。！？.!?])\s*")
_WIDE = str.maketrans({",": "，", ".": "。", ":": "：", ";": "；", "(": "（", ")": "）", "!": "！", "?": "？"})


def edit(text: str, rng: random.Random) -> tuple[str, list[str]]:
    kinds = rng.sample(["substitute", "insert", "delete", "swap", "spaced", "width"], rng.randint(1, 3))
    chars = [c for c in text if not c.isspace()]
    for kind in kinds:
        if kind in ("substitute", "insert", "delete"):
            k = max(1, int(len(text) * rng.uniform(0.005, 0.04)))
            t = list(text)
            for _ in range(k):
                i = rng.randrange(len(t))
                if kind == "substitute":
                    t[i] = rng.choice(chars)
                elif kind == "insert":
                    t.insert(i, rng.choice(chars))
                elif len(t) > 1:
                    del t[i]
            text = "".join(t)
        elif kind == "swap":
            s = [x for x in _SENT.split(text) if x]
            if len(s) >= 2:
                i = rng.randrange(len(s) - 1)
                s[i], s[i + 1] = s[i + 1], s[i]
                text = " ".join(s) if lang_has_spaces(text) else "".join(s)
        elif kind == "spaced":  # PDF extraction's artefact: a space between characters of CJK/Thai text
            text = re.sub(r"(?<=[^\x00-\u2fff\s])(?=[^\x00-\u2fff\s])|(?<=[\u0e00-\u0eff])(?=[\u0e00-\u0eff])",
                          " ", text)
        else:
            text = text.translate(_WIDE)
    return text, kinds


def lang_has_spaces(text: str) -> bool:
    return text.count(" ") > len(text) / 20


def truth_grams(text: str, n: int = 5) -> set[str]:
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(c for c in t if not c.isspace() and not unicodedata.category(c).startswith("P"))
    return {t[i:i + n] for i in range(len(t) - n + 1)} if len(t) >= n else ({t} if t else set())


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def taomi_pairs(texts: list[str], script_units: bool) -> set[tuple[int, int]]:
    from dedup.config import DedupConfig
    from dedup.pipeline import near_duplicates, signatures_for

    cfg = DedupConfig(script_units=script_units)
    n_sh, sigs = signatures_for(texts, cfg)
    ids = np.arange(len(texts), dtype=np.int64)
    res = near_duplicates(ids, n_sh, sigs, {i: float(i) for i in range(len(texts))},
                          lambda d: [texts[i] for i in d], cfg)
    return {(int(min(a, b)), int(max(a, b))) for a, b in res.edges}


def datasketch_pairs(texts: list[str]) -> set[tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    def grams(x: str) -> list[bytes]:
        w = x.lower().split()
        return [" ".join(w[i:i + 5]).encode() for i in range(max(len(w) - 4, 1))]

    mhs = MinHash.bulk([grams(x) for x in texts], num_perm=128, seed=1)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for i, m in enumerate(mhs):
        lsh.insert(i, m)
    return {(min(i, j), max(i, j)) for i, m in enumerate(mhs) for j in lsh.query(m) if j != i}


DATATROVE_CODE = {"zh_CN": "zh", "zh_TW": "zh", "ja": "ja", "ko": "ko", "th": "th", "en": "en", "de": "de", "ru": "ru"}


def datatrove_pairs(texts: list[str], lang: str, python: str) -> set[tuple[int, int]]:
    """datatrove's pairs (bench/datatrove_pairs.py, run by `python`)."""
    out = subprocess.run([python, str(Path(__file__).with_name("datatrove_pairs.py")), DATATROVE_CODE[lang]],
                         input=json.dumps(texts), capture_output=True, text=True, check=True)
    return {(int(a), int(b)) for a, b in json.loads(out.stdout.strip().splitlines()[-1])["pairs"]}


def build(lang: str, per_lang: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    paras = paragraphs(lang)
    rng.shuffle(paras)
    base = paras[:per_lang]
    copies, kinds = [], []
    for p in base:
        c, k = edit(p, rng)
        copies.append(c)
        kinds.append(k)
    return base + copies, kinds


def score(found: set, truth: dict, threshold: float = 0.8) -> tuple[float, float, int]:
    pos = {p for p, j in truth.items() if j >= threshold}
    ok = sum(truth.get(p, 0.0) >= 0.75 for p in found)
    return (ok / len(found) if found else 1.0), (len(found & pos) / len(pos) if pos else 1.0), len(pos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-lang", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--datatrove-python", help="interpreter with datatrove and its word tokenizers (a column)")
    ap.add_argument("--only-dedup", action="store_true", help="skip the zh_CN/zh_TW twins and the language rows")
    a = ap.parse_args()
    heads = ["taomi default", "taomi words", "datasketch words"] + (["datatrove per-language"] if a.datatrove_python else [])
    print(f"{'lang':6} {'docs':>5} {'pairs J>=0.8':>12} | " + " | ".join(f"{h:>22}" for h in heads))
    print(f"{'':6} {'':>5} {'':>12} | " + " | ".join(f"{'recall':>10} {'precision':>11}" for _ in heads))
    for lang in LANGS:
        texts, _ = build(lang, a.per_lang, a.seed)
        if len(texts) < 20:
            print(f"{lang:6} no real text found")
            continue
        grams = [truth_grams(t) for t in texts]
        truth = {}
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                jac = jaccard(grams[i], grams[j])
                if jac >= 0.5:
                    truth[(i, j)] = jac
        t = time.perf_counter()
        units = taomi_pairs(texts, True)
        words = taomi_pairs(texts, False)
        found = [units, words, datasketch_pairs(texts)]
        if a.datatrove_python:
            found.append(datatrove_pairs(texts, lang, a.datatrove_python))
        row = [score(x, truth) for x in found]
        far = [score(x, truth, 0.85)[1] for x in found]
        print(f"{lang:6} {len(texts):>5} {row[0][2]:>12} | " + " | ".join(f"{r:>10.3f} {p:>11.3f}" for p, r, _ in row)
              + f"   ({time.perf_counter() - t:.1f} s)")
        print(f"{'':6} {'':>5} {'J>=0.85':>12} | " + " | ".join(f"{r:>10.3f} {'':>11}" for r in far))
    if not a.only_dedup:
        twins_row(2000, a.seed)
        languages_rows(200)


def languages_rows(per_lang: int) -> None:
    """Script and language detection (curation.languages) on the same real paragraphs."""
    from curation.languages import detect_languages, dominant_script

    expect = {"zh_CN": ("Han", "zh"), "zh_TW": ("Han", "zh"), "ja": ("Kana", "ja"), "ko": ("Hangul", "ko"),
              "th": ("Thai", "th"), "en": ("Latin", "en"), "de": ("Latin", "de"), "ru": ("Cyrillic", "ru")}
    detect_languages(["warm up"])
    for lang, (script, code) in expect.items():
        paras = paragraphs(lang)[:per_lang]
        t = time.perf_counter()
        langs = detect_languages(paras)
        secs = time.perf_counter() - t
        scripts = [dominant_script(p) for p in paras]
        print(f"languages {lang:6} {len(paras):>4} paragraphs: script {sum(s == script for s in scripts) / len(paras):.3f}, "
              f"language {sum(c == code for c in langs) / len(paras):.3f}, {len(paras) / secs:,.0f} docs/s")


if __name__ == "__main__":
    main()

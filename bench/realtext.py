"""Real labelled text from installed packages: the docstrings of six scientific Python libraries,
each labelled with the library it documents.

Human-written prose about overlapping subjects (arrays, statistics, models, data frames, plots),
so the classes share vocabulary: nothing here is generated. Parsed with `ast` from the installed
source (nothing is imported), the code examples cut off, exact repeats dropped, then a seeded
sample per class. Cached under bench/out/ keyed on each package's version.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import random
import re
from pathlib import Path

# (import name, distribution name): the class is the library a docstring documents.
LIBRARIES = (("numpy", "numpy"), ("scipy", "scipy"), ("pandas", "pandas"), ("sklearn", "scikit-learn"),
             ("statsmodels", "statsmodels"), ("matplotlib", "matplotlib"))
_CACHE = Path(__file__).resolve().parent / "out"
_EXAMPLES = re.compile(r"\n\s*(Examples?|Notes|References|See Also)\s*\n\s*-{3,}", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def file_docstrings(path: Path) -> list[tuple[int, str]]:
    """(line, docstring) of every function and class of one Python source file ([] if unparsable)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    return [(node.lineno, doc) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and (doc := ast.get_docstring(node))]


def _docstrings(module: str, min_words: int, max_words: int) -> list[dict]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{module} is not installed (pip install -e '.[test]')")
    root = Path(spec.origin).parent
    out = []
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root.parent)
        if {"tests", "testing", "_vendor", "externals"} & set(rel.parts):
            continue
        for lineno, doc in file_docstrings(f):
            body = _EXAMPLES.split(doc, maxsplit=1)[0]
            words = body.split()
            if len(words) < min_words:
                continue
            out.append({"text": " ".join(words[:max_words]), "where": f"{rel}:{lineno}"})
    return out


def _cached_docstrings(module: str, dist: str, min_words: int, max_words: int) -> list[dict]:
    """One library's docstrings, cached under bench/out/ by library version and word limits."""
    cache = _CACHE / f"docstrings-{module}-{importlib.metadata.version(dist)}-{min_words}-{max_words}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    docs = _docstrings(module, min_words, max_words)
    _CACHE.mkdir(exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(docs))
    tmp.replace(cache)
    return docs


def docstring_corpus(per_class: int = 340, seed: int = 0, min_words: int = 30, max_words: int = 200,
                     libraries=LIBRARIES) -> list[dict]:
    """[{id, text, label, where}] with up to `per_class` docstrings from each library."""
    rows, seen = [], set()
    for module, dist in libraries:
        docs = []
        for d in _cached_docstrings(module, dist, min_words, max_words):
            norm = _SPACE.sub(" ", d["text"].lower())
            if norm not in seen:  # exact repeats (inherited, templated) would sit in two folds
                seen.add(norm)
                docs.append(d)
        for i, d in enumerate(random.Random(seed).sample(docs, min(per_class, len(docs)))):
            rows.append({"id": f"{module}-{i:04d}", "text": d["text"], "label": module, "where": d["where"]})
    return rows


def flip_labels(rows: list[dict], rate: float, seed: int) -> tuple[list[str], set[int]]:
    """Given labels with `rate` of them flipped uniformly to another class: (labels, flipped indices)."""
    rng = random.Random(seed)
    classes = sorted({r["label"] for r in rows})
    flipped = set(rng.sample(range(len(rows)), round(rate * len(rows))))
    given = [rng.choice([c for c in classes if c != r["label"]]) if i in flipped else r["label"]
             for i, r in enumerate(rows)]
    return given, flipped


def catalogue(path: Path) -> dict:
    """msgid -> msgstr of a compiled gettext catalogue (Debian's /usr/share/locale/*/LC_MESSAGES/*.mo):
    real translated text; {} for one Python's gettext cannot parse (bad magic, not UTF-8, an odd
    plural header)."""
    import gettext

    try:
        with Path(path).open("rb") as fh:
            return gettext.GNUTranslations(fh)._catalog
    except (OSError, ValueError, LookupError):
        return {}


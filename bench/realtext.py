"""Real labelled text from installed packages: the docstrings of six scientific Python libraries,
each labelled with the library it documents.

Human-written prose about overlapping subjects (arrays, statistics, models, data frames, plots),
so the classes share vocabulary: nothing here is generated. Parsed with `ast` from the installed
source (nothing is imported), the code examples cut off, exact repeats dropped, then a seeded
sample per class. Cached under bench/out/ keyed on the packages' versions.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import random
import re
from pathlib import Path

# (import name, distribution name): the class is the library a docstring documents.
LIBRARIES = (("numpy", "numpy"), ("scipy", "scipy"), ("pandas", "pandas"), ("sklearn", "scikit-learn"),
             ("statsmodels", "statsmodels"), ("matplotlib", "matplotlib"))
_CACHE = Path(__file__).resolve().parent / "out"
_EXAMPLES = re.compile(r"\n\s*(Examples?|Notes|References|See Also)\s*\n\s*-{3,}", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


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
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            body = _EXAMPLES.split(doc, maxsplit=1)[0]
            words = body.split()
            if len(words) < min_words:
                continue
            out.append({"text": " ".join(words[:max_words]), "where": f"{rel}:{node.lineno}"})
    return out


def docstring_corpus(per_class: int = 340, seed: int = 0, min_words: int = 30, max_words: int = 200,
                     libraries=LIBRARIES) -> list[dict]:
    """[{id, text, label, where}] with up to `per_class` docstrings from each library."""
    versions = {m: importlib.metadata.version(dist) for m, dist in libraries}
    key = hashlib.sha256(json.dumps([versions, per_class, seed, min_words, max_words]).encode()).hexdigest()[:16]
    cache = _CACHE / f"docstrings-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    rows, seen = [], set()
    for module, _ in libraries:
        docs = []
        for d in _docstrings(module, min_words, max_words):
            norm = _SPACE.sub(" ", d["text"].lower())
            if norm not in seen:  # exact repeats (inherited, templated) would sit in two folds
                seen.add(norm)
                docs.append(d)
        for i, d in enumerate(random.Random(seed).sample(docs, min(per_class, len(docs)))):
            rows.append({"id": f"{module}-{i:04d}", "text": d["text"], "label": module, "where": d["where"]})
    _CACHE.mkdir(exist_ok=True)
    cache.write_text(json.dumps(rows))
    return rows


def flip_labels(rows: list[dict], rate: float, seed: int) -> tuple[list[str], set[int]]:
    """Given labels with `rate` of them flipped uniformly to another class: (labels, flipped indices)."""
    rng = random.Random(seed)
    classes = sorted({r["label"] for r in rows})
    flipped = set(rng.sample(range(len(rows)), round(rate * len(rows))))
    given = [rng.choice([c for c in classes if c != r["label"]]) if i in flipped else r["label"]
             for i, r in enumerate(rows)]
    return given, flipped

"""Failure tracing: for each failed item, the nearest training documents (TF-IDF cosine over
hashed word uni+bigrams, two streaming passes) and how much the corpus has like it.

Features: scikit-learn's stateless HashingVectorizer (word 1-2-grams into 2^16 columns, no
vocabulary to hold, so the training corpus streams in batches), sublinear tf, L2 rows. Words are
the text-units layer's (dedup.shingle.split_units): in Chinese, Japanese, Korean and Thai each
character is one, so the features there are character uni- and bigrams; a `\\w+` word was a whole
clause, and a failure matched only documents holding the same clause."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from dedup.shingle import UNIT_SCRIPTS

N_FEATURES = 1 << 16
# A training document is indexed by its first VIEW[0] and last VIEW[1] characters (issue 28): the
# TF-IDF features of a 20 MB text took ~0.9 GB; what a failure is "near" is told by 250,000
# characters as well as by the whole of a 100 MB file.
VIEW = (200_000, 50_000)
SUPPORT_THRESHOLD = 0.3
# Part of a stored index's version: an index built on other features is built again.
FEATURES = "units-1"


# A word: one unit character (Thai vowel signs included, which `\w` is not), or a run of word
# characters that are not units: `split_units(text).split()`'s words without punctuation, found by
# the pattern alone (splitting first with split_units' regex took 3.0 s per 20 MB of CJK text).
_HASHER = HashingVectorizer(ngram_range=(1, 2), n_features=N_FEATURES, alternate_sign=False, norm=None,
                            token_pattern=f"(?u)[{UNIT_SCRIPTS}]|[^\\W{UNIT_SCRIPTS}]+")


def hashed_features(texts: list[str]) -> sparse.csr_matrix:
    """Sublinear-tf hashed word uni+bigram counts, rows L2-normalised."""
    x = _HASHER.transform(texts).tocsr()
    x.data = 1 + np.log(x.data)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sparse.diags(1 / np.maximum(norms, 1e-12)) @ x


def _binary(x: sparse.csr_matrix) -> sparse.csr_matrix:
    y = x.copy()
    y.data = np.ones_like(y.data)
    return y


def _weighted(texts: list[str], idf: np.ndarray) -> sparse.csr_matrix:
    x = hashed_features(texts) @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sparse.diags(1 / np.maximum(norms, 1e-12)) @ x


def document_frequencies(texts: list[str]) -> np.ndarray:
    """Per hashed feature, the number of these texts that have it."""
    return np.asarray(_binary(hashed_features(texts)).sum(axis=0)).ravel()


def idf_of(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Smoothed idf, as scikit-learn's TfidfTransformer: ln((n + 1) / (df + 1)) + 1."""
    return np.log((n_docs + 1) / (df + 1)) + 1


def weighted(texts: list[str], idf: np.ndarray) -> sparse.csr_matrix:
    """TF-IDF rows (sublinear tf, hashed uni+bigrams), L2-normalised: cosine is a dot product."""
    return _weighted(texts, idf).tocsr()


def postings(doc_ids: np.ndarray, x: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A weighted batch as an inverted index: (feature, doc_id, weight) per non-zero."""
    coo = x.tocoo()
    return coo.col.astype(np.int32), np.asarray(doc_ids, dtype=np.int64)[coo.row], coo.data.astype(np.float64)


def nearest_documents(items: list[str], batches: Callable[[], Iterable[tuple[np.ndarray, list[str]]]], k: int = 5,
                      support_threshold: float = SUPPORT_THRESHOLD) -> list[dict]:
    """Top-k training docs per item by cosine, and `support`: docs at or above the threshold.
    (Two streaming passes; the warehouse keeps the same index once per corpus version, see
    flows.trace_task, so an eval reads it instead.)"""
    df = np.zeros(N_FEATURES)
    n_docs = 0
    for _, texts in batches():
        df += document_frequencies(texts)
        n_docs += len(texts)
    idf = idf_of(df, n_docs)
    q = _weighted(items, idf)
    best_s = np.full((len(items), k), -1.0)
    best_d = np.full((len(items), k), -1, dtype=np.int64)
    support = np.zeros(len(items), dtype=np.int64)
    for doc_ids, texts in batches():
        s = (q @ _weighted(texts, idf).T).toarray()
        support += (s >= support_threshold).sum(axis=1)
        cand_s = np.concatenate([best_s, s], axis=1)
        cand_d = np.concatenate([best_d, np.broadcast_to(np.asarray(doc_ids), s.shape)], axis=1)
        top = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_d = np.take_along_axis(cand_d, top, axis=1)
    return [traced(best_d[i][best_d[i] >= 0], best_s[i][best_d[i] >= 0], int(support[i])) for i in range(len(items))]


def traced(doc_ids, sims, support: int) -> dict:
    """One item's trace: nearest documents (best first), support and coverage."""
    return {"nearest": [{"doc_id": int(d), "similarity": round(float(s), 4)} for d, s in zip(doc_ids, sims)],
            "support": int(support), "coverage": "few" if support < 3 else "many"}

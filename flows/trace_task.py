"""Failure tracing through an index built once per corpus version: the first eval against a
corpus builds it (two streaming passes: document frequencies, then weighted rows as postings,
each batch read and written in its own short session); later evals of any model query it."""

from __future__ import annotations

import numpy as np

from evalsets.tracing import (
    FEATURES,
    N_FEATURES,
    SUPPORT_THRESHOLD,
    VIEW,
    document_frequencies,
    idf_of,
    postings,
    traced,
    weighted,
)
from warehouse import eval_store
from warehouse import trace_store as store
from warehouse.corpora import content_version, document_count
from warehouse.db import session


def ensure_index(db, corpus: str, progress=None) -> tuple[str, np.ndarray, bool]:
    """(corpus version, idf, built now?) of the corpus's tracing index, built when missing."""
    with session(db) as con:
        # the features' definition is part of the version: an index built on others is rebuilt
        version, total = f"{content_version(con, corpus)}:{FEATURES}", document_count(con, corpus)
        have = store.index_version(con, corpus)
        if have is not None and have[0] == version:
            return version, have[2], False
        store.start_index(con, corpus)
    df, n_docs = np.zeros(N_FEATURES), 0
    for _, texts in eval_store.training_batches(db, corpus, view=VIEW):
        df += document_frequencies(texts)
        n_docs += len(texts)
        if progress:
            progress("trace index: document frequencies", n_docs, total)
    idf = idf_of(df, n_docs)
    done = 0
    for doc_ids, texts in eval_store.training_batches(db, corpus, view=VIEW):
        f, d, w = postings(doc_ids, weighted(texts, idf))
        with session(db) as con:
            store.add_postings(con, corpus, version, f, d, w)
        done += len(texts)
        if progress:
            progress("trace index: postings", done, total)
    with session(db) as con:
        store.finish_index(con, corpus, version, n_docs, idf)
    return version, idf, True


def trace_failures(db, corpus: str, items: list[str], k: int = 5, progress=None) -> tuple[list[dict], dict]:
    """Per failed item: the k nearest training documents (TF-IDF cosine), support, coverage."""
    version, idf, built = ensure_index(db, corpus, progress)
    if not items:
        return [], {"index_built_now": built}
    f, item, w = postings(np.arange(len(items)), weighted(items, idf))
    with session(db) as con:
        near = store.nearest(con, corpus, version, item.astype(np.int64), f, w, k, SUPPORT_THRESHOLD)
    out = []
    groups = {i: g for i, g in near.groupby("item")} if len(near) else {}
    for i in range(len(items)):
        g = groups.get(i)
        out.append(traced([], [], 0) if g is None else
                   traced(g["doc_id"].to_numpy(), g["similarity"].to_numpy(), int(g["support"].iloc[0])))
    return out, {"index_built_now": built}

"""Suspect labels: confident learning (Northcutt et al. 2021, JAIR 70) on out-of-fold
probabilities of two text classifiers, with the libraries made for each part.

- scikit-learn: TF-IDF features, the classifiers and the K-fold out-of-fold probabilities.
  Two views averaged: logistic regression on word 1-2-grams (C=10, the usual cleanlab text
  baseline) and a calibrated linear SVM on word + character 2-5-grams, which catches what the
  word view misses (identifiers, morphology, markup).
- cleanlab: the confident joint and its pruning (`filter_by="both"`: an item is flagged only when
  both the per-class and the noise-rate rules agree, the precision-leaning choice), and the
  self-confidence score that ranks the list.

Measured on real text (bench/labels_bench.py: 2,040 docstrings of six libraries, 5/8/15% flips),
this ensemble + "both" has precision 0.79-0.81 where cleanlab's default on the single word model
has 0.63-0.74, at equal or higher F1.

Bounded at any corpus size (issue 28): each document is read as a bounded view (`VIEW_HEAD`
first and `VIEW_TAIL` last characters; the character n-grams over its first `CHAR_VIEW`), the
features are hashed (2^20 columns per view, no vocabulary that grows with the corpus) and
weighted by an IDF estimated on a stratified sample of at most `IDF_SAMPLE` documents, each
fold's models train on at most `TRAIN_CAP` documents of the other folds (a stratified sample
when there are more), on the columns at least LARGE_MIN_DF of them use, and the held-out fold
is predicted in batches. Below TRAIN_CAP x 5/4 documents every fold trains the exact ensemble on
all of its complement, as before. 25,000 real files of 88 classes: 137 s, 1.94 GB, F1 0.81.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse

VIEW_HEAD = 3_000  # characters of a document the classifiers read: the first VIEW_HEAD ...
VIEW_TAIL = 1_000  # ... and the last VIEW_TAIL (a 100 MB text is read as 4,000 characters)
CHAR_VIEW = 1_500  # the character n-grams cover the view's first CHAR_VIEW characters
HASH_BITS = 20  # 2^20 hashed columns per view
IDF_SAMPLE = 20_000  # documents the IDF weights are estimated on
TRAIN_CAP = 6_000  # documents each fold's models train on, at most
PREDICT_BATCH = 2_000  # held-out documents featurised at once
FIT_BATCH = 2_000  # documents counted (hashed) at once
LARGE_MIN_DF = 3  # on the large path a column must occur in this many training documents
# Measured peak of one fold in a worker of its own (large path: 6,000 training documents, 161
# classes, 100k real files). With a memory budget (the default --memory-limit: a quarter of RAM,
# at most 1 GB) the folds run side by side only while they fit, else one after another in this
# process: 100k documents took 2.4 GB with two workers, 1.09 GB one fold at a time.
LARGE_FOLD_MB = 900
SMALL_FOLD_MB = 600  # the exact path's fold worker (2,000 real files, 24 classes: 585-601 MB)


@dataclass(frozen=True)
class SuspectConfig:
    folds: int = 5
    seed: int = 0
    workers: int = 0  # processes for the folds; 0 = one per core, at most `folds`, within memory_mb
    memory_mb: int = 0  # the budget (0: none): on the large path a fold needs ~LARGE_FOLD_MB
    filter_by: str = "both"  # cleanlab's pruning rule

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        if self.filter_by not in ("both", "prune_by_noise_rate", "prune_by_class", "confident_learning",
                                  "predicted_neq_given"):
            raise ValueError(f"filter_by {self.filter_by!r} is not one of cleanlab's rules")


class TextFile:
    """The texts to check, in an Arrow IPC file on disk, read by index: the process that checks
    100k documents holds only the texts a step uses (a list of every view was 1.2 GB at 100k),
    and a fold worker receives the file's path and decodes only its own fold's texts. The file's
    record batches are read one at a time with plain reads, not mapped: mapped pages stay in a
    process's RSS once touched, and a worker touched most of the file over its folds (+400 MB
    at 100k). Written by the caller (flows.labels_task, from DuckDB), one string column."""

    def __init__(self, path, rows: np.ndarray | None = None) -> None:
        self.path = str(path)
        self.rows = rows  # text i is the file's row rows[i] (None: row i)
        self._starts = None  # first file row of each record batch

    def _batch_starts(self) -> np.ndarray:
        if self._starts is None:
            import pyarrow as pa

            with pa.OSFile(self.path) as f:
                reader = pa.ipc.open_file(f)
                sizes = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
            self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        return self._starts

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else int(self._batch_starts()[-1])

    def take(self, idx) -> list[str]:
        import pyarrow as pa

        idx = np.asarray(idx, dtype=np.int64)
        rows = self.rows[idx] if self.rows is not None else idx
        starts = self._batch_starts()
        if len(rows) and (rows.min() < 0 or rows.max() >= starts[-1]):
            raise IndexError(f"{self.path}: rows out of range")
        which = np.searchsorted(starts, rows, side="right") - 1
        out: list = [None] * len(rows)
        with pa.OSFile(self.path) as f:
            reader = pa.ipc.open_file(f)
            for b in np.unique(which):
                at = np.flatnonzero(which == b)
                texts = reader.get_batch(int(b)).column(0).take(rows[at] - starts[b]).to_pylist()
                for i, t in zip(at.tolist(), texts):
                    out[i] = t
        return out

    def __getstate__(self) -> dict:  # a worker gets the path (and the row map), never the texts
        return {"path": self.path, "rows": self.rows, "_starts": self._starts}


class _Rows:
    """Some rows of a TextFile, read when (and as far as) they are used."""

    def __init__(self, source: TextFile, idx: np.ndarray) -> None:
        self.source, self.idx = source, idx

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, part: slice) -> list[str]:
        return self.source.take(self.idx[part])


def _take(texts, idx) -> list[str]:
    return texts.take(idx) if isinstance(texts, TextFile) else [texts[i] for i in idx]


def bounded_view(text: str, head: int = VIEW_HEAD, tail: int = VIEW_TAIL) -> str:
    """The part of a document the classifiers read: all of it up to head + tail characters, else
    its first `head` and last `tail` characters."""
    return text if len(text) <= head + tail else text[:head] + "\n…\n" + text[-tail:]


class HashedTfidf:
    """Two hashed views (word 1-2-grams; character 2-5-grams within word boundaries over the
    first CHAR_VIEW characters), sublinear TF, IDF from a sample, rows L2-normalised: a fixed
    width and no vocabulary, so featurising a batch costs the same at any corpus size."""

    def __init__(self, bits: int = HASH_BITS):
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"n_features": 2 ** bits, "alternate_sign": False, "norm": None, "dtype": np.float32}
        self.words = HashingVectorizer(ngram_range=(1, 2), **common)
        self.chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)

    def _counts(self, texts: list[str]):
        return self.words.transform(texts), self.chars.transform([t[:CHAR_VIEW] for t in texts])

    def fit(self, texts: list[str], counts=None) -> HashedTfidf:
        """Document frequencies in batches of FIT_BATCH texts (only the counts of one batch exist
        at a time), or from `counts` already computed for exactly these texts."""
        n = len(texts)
        dfs = [np.zeros(2 ** HASH_BITS, np.int64), np.zeros(2 ** HASH_BITS, np.int64)]
        batches = [counts] if counts is not None else (self._counts(texts[i:i + FIT_BATCH])
                                                       for i in range(0, n, FIT_BATCH))
        for w, c in batches:
            for df, x in zip(dfs, (w, c)):
                df += np.bincount(x.indices, minlength=x.shape[1])
        if not dfs[0].any():
            raise ValueError("the texts have no words to learn from (no token of two or more word characters)")
        # smooth IDF as scikit-learn computes it: ln((1 + n) / (1 + df)) + 1; a character n-gram
        # seen in fewer than 2 sample documents (when there are >= 100) is dropped, as min_df=2 did
        min_df = 2 if n >= 100 else 1
        self.idf = []
        for df, floor in ((dfs[0], 1), (dfs[1], min_df)):
            idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
            idf[df < floor] = 0.0
            self.idf.append(idf)
        return self

    def transform(self, texts: list[str], counts=None):
        """(word view, word + character views), each row L2-normalised per view. Texts are
        counted FIT_BATCH at a time and weighted in place, so the hashing's temporaries never
        exceed one batch."""
        from sklearn.preprocessing import normalize

        if counts is None and len(texts) > FIT_BATCH:
            parts = [self.transform(texts[i:i + FIT_BATCH]) for i in range(0, len(texts), FIT_BATCH)]
            return (sparse.vstack([w for w, _ in parts], format="csr"),
                    sparse.vstack([b for _, b in parts], format="csr"))
        out = []
        for x, idf in zip(counts if counts is not None else self._counts(texts), self.idf):
            x.data = 1 + np.log(x.data, dtype=np.float32)
            x.data *= idf[x.indices]
            x = normalize(x, copy=False)
            x.eliminate_zeros()
            out.append(x.astype(np.float32, copy=False))
        return out[0], sparse.hstack(out, format="csr")


def _stratified_cap(idx: np.ndarray, y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most `cap` of `idx`, each class kept in proportion (at least 3 of each when it has them)."""
    if len(idx) <= cap:
        return idx
    keep = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        take = max(min(3, len(members)), round(cap * len(members) / len(idx)))
        keep.append(rng.choice(members, min(take, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def _models(fast: bool, use_svm: bool):
    """(word-view model, word + character-view model or None). Small corpora: logistic regression
    and a calibrated LinearSVC (the benchmarked ensemble). Large ones (`fast`): the same two views
    fitted by 8 epochs of SGD, log loss on the words and modified Huber (its own probabilities, no
    calibration folds) on words + characters: 7.9x faster on 2,000 real package files of 24
    classes (10.4 s vs 82 s on one core) at F1 0.786 against 0.806; SGD with a calibrated hinge
    model scored 0.05 lower than the exact ensemble at 8% flips on the 2,040-docstring benchmark,
    so the exact models stay wherever they finish (bench/RESULTS.md)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.svm import LinearSVC

    if fast:
        return (SGDClassifier(loss="log_loss", alpha=2e-5, max_iter=8, tol=None, random_state=0),
                SGDClassifier(loss="modified_huber", alpha=1e-4, max_iter=8, tol=None, random_state=0)
                if use_svm else None)
    # newton-cg: the same convex optimum as lbfgs (probabilities within 0.003), 4x faster on wide
    # TF-IDF here (scipy 1.17's L-BFGS-B update dominated: 4.0 vs 1.0 s per fold, 180k features)
    return (LogisticRegression(C=10, max_iter=1000, solver="newton-cg"),
            CalibratedClassifierCV(LinearSVC(C=0.5), cv=3) if use_svm else None)


def _fold(train, y_train: np.ndarray, test, k: int, feats: HashedTfidf, use_svm: bool) -> np.ndarray:
    """One fold: models fitted on the (capped) training documents, the held-out ones predicted in
    batches. `train` and `test` are texts (featurised here, in batches for the test side) or,
    for a corpus small enough to featurise once, (word, word + character) matrix pairs. Only this
    fold's share travels to the worker."""
    large = not isinstance(train, tuple)
    words, both = (feats.transform(train[:] if isinstance(train, _Rows) else train) if large else train)
    # The models see only the columns the training documents use (the hashed width is 2^21; the
    # solvers' dense per-column work made a 2,040-document check 4x slower on all of them); on
    # the large path only those at least LARGE_MIN_DF training documents share: the models'
    # coefficients are dense (classes x columns), and single-document n-grams were most columns.
    floor = LARGE_MIN_DF if large else 1
    wcols, bcols = (np.flatnonzero(np.bincount(x.indices, minlength=x.shape[1]) >= floor) for x in (words, both))
    words, both = words[:, wcols], both[:, bcols]
    lr, svm = _models(fast=large, use_svm=use_svm)
    lr.fit(words, y_train)
    if svm is not None:
        svm.fit(both, y_train)
    del words, both
    n_test = test[0].shape[0] if isinstance(test, tuple) else len(test)
    out = np.zeros((n_test, k))
    for s in range(0, n_test, PREDICT_BATCH):
        part = slice(s, s + PREDICT_BATCH)
        w, b = (test[0][part], test[1][part]) if isinstance(test, tuple) else feats.transform(test[part])
        w, b = w[:, wcols], b[:, bcols]
        p = np.zeros((w.shape[0], k))
        p[:, lr.classes_] = lr.predict_proba(w)
        if svm is not None:
            q = np.zeros((w.shape[0], k))
            q[:, svm.classes_] = svm.predict_proba(b)
            p = (p + q) / 2
        out[part] = p
    return out


def out_of_fold_probabilities(texts: list[str], y: np.ndarray, k: int, cfg: SuspectConfig = SuspectConfig(),
                              progress=None
                              ) -> np.ndarray:
    """(n, k) probabilities, each row from models that never saw that item. `texts` are read
    through `bounded_view` (callers may pass the views already), or are a TextFile of views."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=k)
    folds = int(min(cfg.folds, counts.min()))
    if folds < 2:
        raise ValueError("every class needs at least 2 items for out-of-fold probabilities")
    on_disk = isinstance(texts, TextFile)  # views already, read by index
    if not on_disk:
        texts = [bounded_view(t) for t in texts]
    rng = np.random.default_rng(cfg.seed)
    everyone = np.arange(len(texts))
    # every fold trains on all of its complement. Not with fewer folds than cfg.folds (a class of 2
    # items gives 2 folds): 10,610 documents in 45 classes then took the exact path at 12,000,
    # and each worker's solver held ~1.5 GB for the dense coefficients over every column.
    small = len(texts) <= TRAIN_CAP * cfg.folds / (cfg.folds - 1)
    feats = HashedTfidf()
    if small:  # featurise once: the IDF from every document, every fold slices the matrices
        if on_disk:
            texts = texts.take(everyone)
        raw = feats._counts(texts)
        feats.fit(texts, raw)
    else:
        feats.fit(_take(texts, _stratified_cap(everyone, y, IDF_SAMPLE, rng)))
    cv = StratifiedKFold(folds, shuffle=True, random_state=cfg.seed)
    splits = [(_stratified_cap(tr, y, TRAIN_CAP, rng), te) for tr, te in cv.split(everyone, y)]
    jobs = cfg.workers or min(folds, os.cpu_count() or 1)
    if not cfg.workers and cfg.memory_mb:  # side by side only while the folds (and this process) fit the budget
        jobs = max(1, min(jobs, cfg.memory_mb // (SMALL_FOLD_MB if small else LARGE_FOLD_MB) - 1))
    # The SVM's calibration splits each training fold in 3: it needs a few items per class.
    use_svm = counts.min() >= 10
    if small:
        words, both = feats.transform(texts, raw)
        del raw
        jobs_args = [((words[tr], both[tr]), y[tr], (words[te], both[te])) for tr, te in splits]
    elif on_disk:  # large: each fold reads and featurises its capped training sample, then its
        jobs_args = [(_Rows(texts, tr), y[tr], _Rows(texts, te)) for tr, te in splits]  # held-out fold in batches
    else:
        jobs_args = [([texts[i] for i in tr], y[tr], [texts[i] for i in te]) for tr, te in splits]
    parts = []
    if progress:
        progress("classifier folds", 0, len(jobs_args))
    for part in Parallel(n_jobs=jobs, return_as="generator")(delayed(_fold)(tr, ytr, te, k, feats, use_svm)
                                                            for tr, ytr, te in jobs_args):
        parts.append(part)  # in fold order, each as soon as it (and the ones before it) is done
        if progress:
            progress("classifier folds", len(parts), len(jobs_args))
    probs = np.zeros((len(texts), k))
    for (_, te), p in zip(splits, parts):
        probs[te] = p
    return probs


def find_suspects(probs: np.ndarray, given: np.ndarray, filter_by: str = "both") -> dict[str, np.ndarray]:
    """Confident-learning suspects: mask, suggested label (the most probable other class) and
    score (self-confidence p(given | text): lower is more suspect)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():  # cleanlab warns, per class, when a class is never predicted
        warnings.simplefilter("ignore", UserWarning)
        suspect = find_label_issues(given, probs, filter_by=filter_by, n_jobs=1)
    score = get_label_quality_scores(given, probs, method="self_confidence")
    other = probs.copy()
    other[np.arange(len(given)), given] = -1.0
    return {"suspect": suspect, "suggested": other.argmax(axis=1), "score": score}


def suspect_labels(texts: list[str], y: np.ndarray, k: int, cfg: SuspectConfig = SuspectConfig(), progress=None
                   ) -> dict[str, np.ndarray]:
    """Suspects among `texts` with given label codes `y` (0..k-1), plus the probabilities.
    `progress(stage, done, total)` is told the folds done."""
    probs = out_of_fold_probabilities(texts, y, k, cfg, progress)
    return find_suspects(probs, y, cfg.filter_by) | {"probs": probs}

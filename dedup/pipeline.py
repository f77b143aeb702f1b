"""The near-duplicate stages over arrays, in pipeline order: shingle -> sign -> band -> verify -> cluster.

Pure: takes arrays (texts as lists or Arrow string columns) and a `fetch_texts(doc_ids)` callable,
returns arrays. The caller (flows/dedup_task.py) does the I/O. Word n-grams run through the
compiled kernel (`dedup.kernel`) when numba is installed; the numpy stages in `dedup.shingle` and
`dedup.minhash` are the reference it is tested against, and run otherwise (and for char n-grams).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dedup import kernel
from dedup.bands import band_keys, candidate_pairs_from_keys, choose_bands
from dedup.cluster import Decisions, decide
from dedup.config import DedupConfig
from dedup.minhash import sign
from dedup.shingle import shingle_batch
from dedup.verify import verify_flat

FetchTexts = Callable[[np.ndarray], list[str]]


@dataclass
class NearResult:
    bands: int
    rows: int
    candidates: int
    edges: np.ndarray  # verified (doc_a, doc_b)
    similarities: np.ndarray
    decisions: Decisions
    seconds: dict[str, float] = field(default_factory=dict)


KERNEL_DOCS = 2000  # texts per numpy shingle+sign step: keeps the working arrays cache-sized (fastest here)
# Below this many documents a process that has not loaded the compiled code yet uses the numpy path
# (same bits): numba's first call costs ~0.7 s, the kernel saves ~20 us/doc (bench/RESULTS.md).
KERNEL_MIN_DOCS = 30_000


def jit(docs: int | None = None) -> bool:
    """Whether work on `docs` documents runs compiled: numba importable, and either the code is
    loaded in this process already or the job is big enough to pay for loading it."""
    return kernel.AVAILABLE and (docs is None or docs >= KERNEL_MIN_DOCS or kernel.FORCED or kernel.loaded())


def compiled(cfg: DedupConfig, docs: int | None = None) -> bool:
    """Whether shingling and signing run on the compiled kernel (word n-grams only)."""
    return not cfg.char_ngrams and jit(docs)


KERNEL_MIN_CHARS = 16_000_000  # a batch this large takes the compiled path whatever its document count


def _job(texts, docs: int | None) -> int:
    """The size of the whole job a batch belongs to (the batch itself unless told); a batch of
    KERNEL_MIN_CHARS characters or more counts as a large job. The numpy reference holds ~70 bytes
    of token arrays per character of CJK text (one 20M-character document: 1.56 GB and 16.7 s,
    against 0.91 GB and 1.6 s compiled; bench/RESULTS.md), so a few long documents go compiled
    even where loading numba (~0.7 s) costs more than it saves."""
    n = len(texts) if docs is None else docs
    chars = sum(map(len, texts)) if isinstance(texts, list) else getattr(texts, "nbytes", 0)
    return max(n, KERNEL_MIN_DOCS) if chars >= KERNEL_MIN_CHARS else n


def shingles(texts, cfg: DedupConfig, docs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit shingle hashes, offsets) of a batch of texts, a list or an Arrow string column
    (compiled or reference path, same bits; `docs`: the size of the whole job, for the choice)."""
    if compiled(cfg, _job(texts, docs)):
        return kernel.shingle_texts(texts, cfg)
    return shingle_batch(texts if isinstance(texts, list) else [t or "" for t in texts.to_pylist()], cfg)


# Bounded memory at any document length (issue 28): shingling holds ~20-70 bytes per character
# (a 100 MB document: 2-7 GB). A document longer than PIECE_CHARS is signed in pieces of at most
# PIECE_CHARS characters, cut at whitespace (or anywhere, where a 64K-character stretch has none)
# and overlapping by PIECE_OVERLAP characters so that every shingle that crosses a cut lies whole
# in one piece; its signature is the element-wise minimum of the pieces' (a MinHash of a union
# is the minimum of the MinHashes), identical to the whole document's when the cuts fall between
# units. Its shingle count is then the pieces' sum (shingles inside an overlap count twice).
# The numpy path signs at most NUMPY_CHARS characters per step.
PIECE_CHARS = 2_000_000
PIECE_OVERLAP = 4_096
NUMPY_CHARS = 4_000_000
_SEARCH = 65_536


def _boundary(text: str, i: int, floor: int) -> int:
    """The last whitespace position at or before `i` (not before `floor`, nor more than 64K
    characters back), else `i` itself."""
    lo = max(floor, i - _SEARCH)
    best = max(text.rfind(c, lo, i + 1) for c in " \n\t\r")
    return best if best > floor else i


def piece_bounds(text: str, size: int | None = None, overlap: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of overlapping pieces of at most `size` characters (see PIECE_CHARS): each
    ends at whitespace and the next starts at whitespace at least `overlap` characters before."""
    size, overlap = size or PIECE_CHARS, overlap or PIECE_OVERLAP
    out, start = [], 0
    while start + size < len(text):
        cut = _boundary(text, start + size, start + overlap + 1)
        out.append((start, cut))
        start = _boundary(text, cut - overlap, start + 1)
    out.append((start, len(text)))
    return out


def pieces(text: str, size: int | None = None, overlap: int | None = None) -> list[str]:
    """A long text as overlapping pieces of at most `size` characters (see PIECE_CHARS)."""
    return [text[a:b] for a, b in piece_bounds(text, size, overlap)]


def _piecewise(texts: list[str], cfg: DedupConfig, docs: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of texts some of which are longer than PIECE_CHARS: each long one from its pieces."""
    n = len(texts)
    n_sh = np.zeros(n, dtype=np.int64)
    sigs = np.empty((n, cfg.num_perm), dtype=np.uint32)
    short = [i for i, t in enumerate(texts) if len(t) <= PIECE_CHARS]
    if short:
        n_sh[short], sigs[short] = signatures_for([texts[i] for i in short], cfg, docs)
    for i in (i for i, t in enumerate(texts) if len(t) > PIECE_CHARS):
        parts = pieces(texts[i])
        sigs[i] = np.iinfo(np.uint32).max
        for lo in range(0, len(parts), 2):  # two pieces at a time: memory of ~2 x PIECE_CHARS
            ns, sg = signatures_for(parts[lo:lo + 2], cfg, docs)
            n_sh[i] += int(ns.sum())
            np.minimum(sigs[i], sg.min(axis=0), out=sigs[i])
    return n_sh, sigs


def _signatures_numpy(texts: list[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    n_sh, sigs = [], []
    lo = 0
    while lo < max(len(texts), 1):
        hi, held = lo, 0
        while hi < len(texts) and hi - lo < KERNEL_DOCS and (hi == lo or held + len(texts[hi]) <= NUMPY_CHARS):
            held += len(texts[hi])
            hi += 1
        hashes, offsets = shingle_batch(texts[lo:max(hi, lo + 1)], cfg)
        n_sh.append(np.diff(offsets))
        sigs.append(sign(hashes, offsets, cfg.num_perm, cfg.seed))
        lo = max(hi, lo + 1)
    return np.concatenate(n_sh), np.concatenate(sigs)


def signatures_for(texts: list[str], cfg: DedupConfig, docs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n_shingles per text, signatures (n, num_perm) uint32) for a batch of texts."""
    if any(len(t) > PIECE_CHARS for t in texts):
        return _piecewise(texts, cfg, docs)
    if compiled(cfg, _job(texts, docs)):
        return kernel.sign_texts(texts, cfg)
    return _signatures_numpy(texts, cfg)


def signatures_arrow(column, cfg: DedupConfig, workers: int = 1, docs: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of an Arrow string column. The compiled kernel releases the GIL, so `workers`
    threads sign contiguous slices in parallel on shared memory (no copies, no pickling); the
    rows are identical whatever the number of workers. Documents longer than PIECE_CHARS are
    signed in pieces (`_piecewise`)."""
    import pyarrow.compute as pc

    if len(column) and (pc.max(pc.utf8_length(column)).as_py() or 0) > PIECE_CHARS:
        return _piecewise([t or "" for t in column.to_pylist()], cfg, docs)
    if not compiled(cfg, _job(column, docs)):
        return _signatures_numpy([t or "" for t in column.to_pylist()], cfg)
    parts = _on_slices(column, workers, lambda part: kernel.sign_arrow(part, cfg))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _on_slices(column, workers: int, work) -> list:
    """`work` of contiguous slices of an Arrow column on `workers` threads (the compiled kernels
    release the GIL), results in order; the whole column on this thread when it is too short."""
    n = len(column)
    if workers <= 1 or n < 2 * workers:
        return [work(column)]
    cuts = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers, thread_name_prefix="taomi-slice") as pool:
        return list(pool.map(lambda k: work(column.slice(cuts[k], cuts[k + 1] - cuts[k])), range(workers)))


def shingle_sets_flat(texts, cfg: DedupConfig, docs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique shingle hashes per text, concatenated, with offsets (for exact Jaccard)."""
    hashes, offsets = shingles(texts, cfg, docs)
    return kernel.unique_per_doc(hashes, offsets, jit=compiled(cfg, _job(texts, docs)))


def band_params(cfg: DedupConfig) -> tuple[int, int]:
    if cfg.bands is not None:
        return cfg.bands, cfg.rows
    return choose_bands(cfg.threshold, cfg.num_perm)


# Candidates per involved document up to which verification puts each pair's two raw shingle
# lists in a small hash set (~2 us a pair) instead of sorting every document's set once (~10 us
# a document); the same similarities either way (tested).
HASHED_PAIRS_PER_DOC = 4


# Shingle hashes (8 bytes each) verification holds at once (issue 28): the sets of every document
# of the candidate pairs were held together, 2.4 GB for --char-ngrams on 318 MB of real files.
# When the involved documents' estimated shingles exceed this, they are cut into groups and the
# pairs verified group pair by group pair (two groups held at a time).
VERIFY_SHINGLES = 24_000_000


def verify(cand: np.ndarray, fetch_texts: FetchTexts, cfg: DedupConfig, workers: int = 1,
           chars: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(verified pairs, similarities): every candidate (doc ids) checked by exact Jaccard of its
    shingle sets. Texts are fetched `batch_docs` at a time and kept only as hash arrays (sorted
    unique sets, or the raw lists when there are few candidates per document: see
    HASHED_PAIRS_PER_DOC); with `workers` > 1 and an Arrow column, threads shingle slices of each
    batch. `chars(doc_ids)`: their lengths, to bound the sets held (VERIFY_SHINGLES)."""
    involved = np.unique(cand.ravel())
    if chars is not None and len(cand):
        # shingles per character: ~1 for char n-grams, ~1/5 for words (an upper estimate)
        est = chars(involved) // (1 if cfg.char_ngrams else 4) + 1
        if int(est.sum()) > VERIFY_SHINGLES:
            return _verify_grouped(cand, involved, est, fetch_texts, cfg, workers)
    return _verify_all(cand, involved, fetch_texts, cfg, workers)


def _verify_grouped(cand: np.ndarray, involved: np.ndarray, est: np.ndarray, fetch_texts: FetchTexts,
                    cfg: DedupConfig, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """`_verify_all` over groups of the involved documents of at most VERIFY_SHINGLES / 2
    estimated shingles: the pairs within a group, then across each pair of groups; the results in
    the order of `cand`, as one pass gives them."""
    cum = np.cumsum(est)
    group = (cum - 1) // max(1, VERIFY_SHINGLES // 2)  # group of each involved document (ascending)
    ga, gb = group[np.searchsorted(involved, cand[:, 0])], group[np.searchsorted(involved, cand[:, 1])]
    lo, hi = np.minimum(ga, gb), np.maximum(ga, gb)
    edges, sims, where = [], [], []
    for g1, g2 in sorted(set(zip(lo.tolist(), hi.tolist()))):
        idx = np.flatnonzero((lo == g1) & (hi == g2))
        part = cand[idx]
        e, sm = _verify_all(part, np.unique(part.ravel()), fetch_texts, cfg, workers)
        edges.append(e)
        sims.append(sm)
        # where each verified pair stood in `cand` (pairs are unique)
        key = part[:, 0].astype(np.int64) * (1 << 32) + part[:, 1]
        order = np.argsort(key)
        where.append(idx[order[np.searchsorted(key[order], e[:, 0].astype(np.int64) * (1 << 32) + e[:, 1])]]
                     if len(e) else np.zeros(0, dtype=np.int64))
    at = np.concatenate(where)
    order = np.argsort(at, kind="stable")
    return np.concatenate(edges)[order], np.concatenate(sims)[order]


def _verify_all(cand: np.ndarray, involved: np.ndarray, fetch_texts: FetchTexts, cfg: DedupConfig, workers: int
                ) -> tuple[np.ndarray, np.ndarray]:
    by_pair = compiled(cfg, len(involved)) and len(cand) <= HASHED_PAIRS_PER_DOC * len(involved)
    sets = shingles if by_pair else shingle_sets_flat
    hashes, offsets = [], [np.zeros(1, dtype=np.int64)]
    base = 0
    for lo in range(0, len(involved), cfg.batch_docs):
        texts = fetch_texts(involved[lo:lo + cfg.batch_docs])
        threads = workers if compiled(cfg, len(involved)) and not isinstance(texts, list) else 1
        for h, o in _on_slices(texts, threads, lambda part: sets(part, cfg, len(involved))):
            hashes.append(h)
            offsets.append(o[1:] + base)
            base += len(h)
    flat = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    offs = np.concatenate(offsets)
    rows = np.searchsorted(involved, cand)
    return verify_flat(cand, rows, flat, offs, cfg.threshold, jit=compiled(cfg, len(involved)),
                       sorted_sets=not by_pair)


def near_duplicates(doc_ids: np.ndarray, n_shingles: np.ndarray, sigs: np.ndarray, rank: dict[int, float],
                    fetch_texts: FetchTexts, cfg: DedupConfig) -> NearResult:
    """Band, verify every candidate by exact Jaccard, cluster and decide, for the given documents."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    bands, rows = band_params(cfg)
    mask = n_shingles > 0
    fast = jit(len(doc_ids))
    keys = band_keys(sigs[mask], bands, rows, jit=fast)
    cand = candidate_pairs_from_keys(keys, doc_ids[mask], jit=fast)
    seconds["band"] = time.perf_counter() - t
    return finish(cand, rank, fetch_texts, cfg, bands, rows, seconds)


def finish(cand: np.ndarray, rank: dict[int, float], fetch_texts: FetchTexts, cfg: DedupConfig,
           bands: int, rows: int, seconds: dict[str, float], workers: int = 1,
           chars: Callable[[np.ndarray], np.ndarray] | None = None) -> NearResult:
    """verify -> cluster, from candidate pairs of doc ids."""
    t = time.perf_counter()
    edges, sims = verify(cand, fetch_texts, cfg, workers, chars)
    seconds["verify"] = time.perf_counter() - t
    t = time.perf_counter()
    decisions = decide(edges, sims, rank)
    seconds["cluster"] = time.perf_counter() - t
    return NearResult(bands, rows, len(cand), edges, sims, decisions, seconds)

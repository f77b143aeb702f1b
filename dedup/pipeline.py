"""The near-duplicate stages over arrays, in pipeline order: shingle -> sign -> band -> verify -> cluster.

Pure: takes arrays and a `fetch_texts(doc_ids) -> list[str]` callable, returns arrays. The caller
(flows/dedup_task.py) does the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dedup.bands import candidate_pairs, choose_bands
from dedup.cluster import Decisions, decide
from dedup.config import DedupConfig
from dedup.minhash import sign
from dedup.shingle import shingle_batch, shingle_sets
from dedup.verify import verify_pairs

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


KERNEL_DOCS = 2000  # texts per shingle+sign step: keeps the working arrays cache-sized (fastest here)


def signatures_for(texts: list[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n_shingles per text, signatures (n, num_perm) uint32) for a batch of texts."""
    n_sh, sigs = [], []
    for lo in range(0, max(len(texts), 1), KERNEL_DOCS):
        hashes, offsets = shingle_batch(texts[lo:lo + KERNEL_DOCS], cfg)
        n_sh.append(np.diff(offsets))
        sigs.append(sign(hashes, offsets, cfg.num_perm, cfg.seed))
    return np.concatenate(n_sh), np.concatenate(sigs)


def band_params(cfg: DedupConfig) -> tuple[int, int]:
    if cfg.bands is not None:
        return cfg.bands, cfg.rows
    return choose_bands(cfg.threshold, cfg.num_perm)


def near_duplicates(doc_ids: np.ndarray, n_shingles: np.ndarray, sigs: np.ndarray, rank: dict[int, float],
                    fetch_texts: FetchTexts, cfg: DedupConfig) -> NearResult:
    """Band, verify every candidate by exact Jaccard, cluster and decide, for the given documents."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    bands, rows = band_params(cfg)
    local = candidate_pairs(sigs, bands, rows, mask=n_shingles > 0)
    cand = doc_ids[local] if len(local) else np.empty((0, 2), dtype=np.int64)
    seconds["band"] = time.perf_counter() - t
    t = time.perf_counter()
    involved = np.unique(cand.ravel())
    sets: dict[int, np.ndarray] = {}
    for lo in range(0, len(involved), cfg.batch_docs):
        ids = involved[lo:lo + cfg.batch_docs]
        for d, s in zip(ids.tolist(), shingle_sets(fetch_texts(ids), cfg)):
            sets[d] = s
    edges, sims = verify_pairs(cand, sets, cfg.threshold)
    seconds["verify"] = time.perf_counter() - t
    t = time.perf_counter()
    decisions = decide(edges, sims, rank)
    seconds["cluster"] = time.perf_counter() - t
    return NearResult(bands, rows, len(cand), edges, sims, decisions, seconds)

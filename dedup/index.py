"""An incremental "is this text a near-duplicate of something stored?" index.

Built on datasketch's MinHashLSH from stored signatures (our signatures are datasketch
LeanMinHashes bit for bit), with the same recall-heavy bands as batch dedup, and every LSH
candidate verified by exact Jaccard before it is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from datasketch import MinHashLSH

from dedup.config import DedupConfig
from dedup.minhash import to_datasketch
from dedup.pipeline import band_params, signatures_for
from dedup.shingle import shingle_sets
from dedup.verify import jaccard


@dataclass(frozen=True)
class Match:
    doc_id: int
    similarity: float       # exact Jaccard of the shingle sets
    estimated: float        # MinHash estimate (datasketch .jaccard)


class NearDuplicateIndex:
    """MinHashLSH over stored signatures; `query(text)` returns verified matches, best first."""

    def __init__(self, cfg: DedupConfig, doc_ids: np.ndarray, n_shingles: np.ndarray, sigs: np.ndarray,
                 fetch_texts: Callable[[np.ndarray], list[str]]):
        self.cfg = cfg
        self.fetch_texts = fetch_texts
        self.lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, params=band_params(cfg))
        self.sketches = {}
        with self.lsh.insertion_session() as session:
            for d, n, s in zip(doc_ids.tolist(), n_shingles.tolist(), sigs):
                if n == 0:
                    continue
                lean = to_datasketch(s, cfg.seed)
                self.sketches[d] = lean
                session.insert(d, lean, check_duplication=False)

    def __len__(self) -> int:
        return len(self.sketches)

    def query(self, text: str, limit: int = 10) -> list[Match]:
        if not text or not text.strip():
            raise ValueError("query text is empty")
        n_sh, sig = signatures_for([text], self.cfg)
        if n_sh[0] == 0:
            return []
        probe = to_datasketch(sig[0], self.cfg.seed)
        cand = np.array(sorted(self.lsh.query(probe)), dtype=np.int64)
        if len(cand) == 0:
            return []
        mine = shingle_sets([text], self.cfg)[0]
        theirs = shingle_sets(self.fetch_texts(cand), self.cfg)
        out = []
        for d, s in zip(cand.tolist(), theirs):
            sim = jaccard(mine, s)
            if sim >= self.cfg.threshold - 1e-12:
                out.append(Match(d, sim, float(probe.jaccard(self.sketches[d]))))
        out.sort(key=lambda m: (-m.similarity, m.doc_id))
        return out[:limit]

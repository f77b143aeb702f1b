"""Configuration of one deduplication run (validated on construction)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

POLICIES = ("first", "longest", "quality")


@dataclass(frozen=True)
class DedupConfig:
    """Near-duplicate settings. `bands`/`rows` default to a recall-heavy choice for `threshold`."""

    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    char_ngrams: bool = False  # character n-grams (CJK, short texts) instead of word n-grams
    seed: int = 1
    bands: int | None = None
    rows: int | None = None
    policy: str = "first"
    nfkc: bool = True
    casefold: bool = True
    fold_punctuation: bool = True
    batch_docs: int = 20_000

    def __post_init__(self) -> None:
        if not (0 < self.threshold <= 1):
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if not (16 <= self.num_perm <= 1024):
            raise ValueError(f"num_perm must be in [16, 1024], got {self.num_perm}")
        if not (1 <= self.ngram <= 32):
            raise ValueError(f"ngram must be in [1, 32], got {self.ngram}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither")
        if self.bands is not None and (self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm):
            raise ValueError(f"bands x rows must be positive and <= num_perm ({self.num_perm})")
        if self.batch_docs < 1:
            raise ValueError("batch_docs must be >= 1")

    def signature_key(self) -> str:
        """What the stored signatures depend on (a change forces recomputation)."""
        return (f"p{self.num_perm}-s{self.seed}-{'c' if self.char_ngrams else 'w'}{self.ngram}"
                f"-n{int(self.nfkc)}{int(self.casefold)}{int(self.fold_punctuation)}")

    def as_dict(self) -> dict:
        return asdict(self)

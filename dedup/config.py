"""Configuration of one deduplication run (validated on construction)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

POLICIES = ("first", "longest", "quality")
# Version of the shingle hashing (dedup.shingle, dedup.kernel): part of the signature key and the
# config hash, so signatures of another version are never mixed in or reused.
SHINGLE_VERSION = 4  # 3: characters are the units of scripts written without spaces (script_units);
# 4: a document mostly in such scripts takes every character as a unit (dedup.shingle.spread_units)


@dataclass(frozen=True)
class DedupConfig:
    """Near-duplicate settings. `bands`/`rows` default to a recall-heavy choice for `threshold`."""

    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    char_ngrams: bool = False  # character n-grams of the whole text (short texts) instead of word n-grams
    # Han, kana, Hangul, Thai, Lao, Khmer, Myanmar: each character is a unit (a "word"), whatever the
    # spacing; space-delimited scripts stay words (dedup.shingle.UNIT_SCRIPTS)
    script_units: bool = True
    to_simplified: bool = False  # traditional Chinese converted to simplified (OpenCC t2s) before shingling
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
        return (f"v{SHINGLE_VERSION}-p{self.num_perm}-s{self.seed}-{'c' if self.char_ngrams else 'w'}{self.ngram}"
                f"-n{int(self.nfkc)}{int(self.casefold)}{int(self.fold_punctuation)}{'-u' if self.script_units else ''}{'-t2s' if self.to_simplified else ''}")

    def as_dict(self) -> dict:
        return asdict(self)


def parse_size_mb(text: str | int | None, total_mb: int) -> int:
    """'512MB', '2GB', '25%' (of total_mb) or a number of MB -> MB; raises ValueError otherwise."""
    if text is None:
        return default_memory_limit_mb(total_mb)
    if isinstance(text, int):
        mb = text
    else:
        s = text.strip().upper().replace(" ", "")
        units = {"%": None, "KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 * 1024, "M": 1, "G": 1024}
        for suffix, mult in units.items():
            if s.endswith(suffix):
                try:
                    value = float(s[:-len(suffix)])
                except ValueError:
                    break
                mb = int(value * total_mb / 100) if mult is None else int(value * mult)
                break
        else:
            try:
                mb = int(float(s))
            except ValueError:
                mb = -1
        if mb == -1 or not s:
            raise ValueError(f"memory limit {text!r}: give a size like 512MB, 2GB or 25%")
    if mb < 64:
        raise ValueError(f"memory limit {text!r} is below 64 MB; DuckDB and the band keys need more")
    return mb


def total_memory_mb() -> int:
    """Physical memory of this machine in MB (4 GiB assumed where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 20))
    except (ValueError, OSError, AttributeError):
        return 4096


def available_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup pinning, unlike os.cpu_count())."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_memory_limit_mb(total_mb: int) -> int:
    """A quarter of RAM, at most 1 GiB: what dedup's arrays and DuckDB's buffer pool may use."""
    return max(256, min(total_mb // 4, 1024))


@dataclass(frozen=True)
class Resources:
    """How a run may use the machine; never changes a result (not part of the config hash)."""

    workers: int = 1
    memory_limit_mb: int = 1024
    band_grouping: str = "auto"  # auto: in memory while the band keys fit the budget, else DuckDB

    @classmethod
    def default(cls, workers: int = 0, memory_limit: str | int | None = None) -> Resources:
        """workers 0: every core this process may use; memory limit: `parse_size_mb` (default a
        quarter of RAM, at most 1 GiB)."""
        return cls(workers=workers or available_cores(), memory_limit_mb=parse_size_mb(memory_limit, total_memory_mb()))

    def __post_init__(self) -> None:
        if not (1 <= self.workers <= 256):
            raise ValueError(f"workers must be in [1, 256], got {self.workers}")
        if self.memory_limit_mb < 64:
            raise ValueError(f"memory limit must be >= 64 MB, got {self.memory_limit_mb}")
        if self.band_grouping not in ("auto", "memory", "duckdb"):
            raise ValueError(f"band_grouping must be auto, memory or duckdb, got {self.band_grouping!r}")

    @property
    def duckdb_mb(self) -> int:
        """Half the budget for DuckDB's buffer pool; the other half for in-memory band keys."""
        return max(32, self.memory_limit_mb // 2)

    def out_of_core(self, band_key_bytes: int) -> bool:
        """Group band keys in DuckDB? (auto: when they pass the other half of the budget)"""
        if self.band_grouping != "auto":
            return self.band_grouping == "duckdb"
        return band_key_bytes > (self.memory_limit_mb - self.duckdb_mb) << 20

"""Scaling observations (N, D, loss[, U]): loading and validation with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ALIASES = {
    "n": "N", "params": "N", "parameters": "N", "model size": "N", "model_size": "N",
    "d": "D", "tokens": "D", "c": "C", "flops": "C", "training flop": "C", "compute": "C",
    "loss": "loss", "l": "loss", "u": "U", "unique_tokens": "U", "unique tokens": "U",
    "run": "run", "name": "run", "run_name": "run", "weight": "weight",
    "budget": "budget", "planned_flops": "budget", "flops_budget": "budget", "isoflop": "budget",
}


@dataclass(frozen=True)
class Observations:
    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    U: np.ndarray | None = None
    weight: np.ndarray | None = None
    run: np.ndarray | None = None
    budget: np.ndarray | None = None  # the isoFLOP budget a run was planned for (achieved 6ND can differ)

    def __len__(self) -> int:
        return len(self.N)

    def subset(self, idx: np.ndarray) -> Observations:
        pick = (lambda a: None if a is None else a[idx])
        return Observations(self.N[idx], self.D[idx], self.loss[idx], pick(self.U), pick(self.weight), pick(self.run),
                            pick(self.budget))

    def without_highest_loss(self, k: int) -> Observations:
        """Drop the k highest-loss points (Besiroglu et al. 2024 drop Hoffmann's 5 outliers)."""
        if k < 0 or k >= len(self) - 4:
            raise ObservationError(f"cannot drop {k} of {len(self)} points and keep enough to fit")
        return self.subset(np.sort(np.argsort(self.loss, kind="stable")[: len(self) - k])) if k else self

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"N": self.N, "D": self.D, "loss": self.loss})
        for k in ("U", "weight", "run", "budget"):
            if getattr(self, k) is not None:
                df[k] = getattr(self, k)
        return df


class ObservationError(ValueError):
    """Observations that cannot be fitted; the message says which rows and why."""


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask) + 1
    shown = ", ".join(map(str, idx[:limit]))
    return shown + (f" (+{len(idx) - limit} more)" if len(idx) > limit else "")


def from_frame(df: pd.DataFrame, source: str = "observations", min_points: int = 5) -> Observations:
    """Validate a frame with N, D or C, loss (and optional U, weight, run). Rows are 1-based."""
    df = df.rename(columns={c: ALIASES.get(str(c).strip().lower(), c) for c in df.columns})
    if "loss" not in df.columns or "N" not in df.columns or not ({"D", "C"} & set(df.columns)):
        raise ObservationError(f"{source}: need columns N, D (or C) and loss; got {list(df.columns)}")
    for col in ("N", "D", "C", "loss", "U", "weight", "budget"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if "D" not in df.columns:
        df["D"] = df["C"] / (6 * df["N"])  # C = 6 N D (Kaplan et al. 2020, sec. 2.1)
    for col in ("N", "D", "loss") + tuple(c for c in ("U", "weight", "budget") if c in df.columns):
        v = df[col].to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            raise ObservationError(f"{source}: rows {_rows(bad)}: {col} is missing, NaN or infinite")
        if (v <= 0).any():
            raise ObservationError(f"{source}: rows {_rows(v <= 0)}: {col} must be > 0")
    dup = df.duplicated(subset=["N", "D", "loss"], keep="first").to_numpy()
    if dup.any():
        raise ObservationError(f"{source}: rows {_rows(dup)} repeat an earlier (N, D, loss) row; remove duplicates")
    if len(df) < min_points:
        raise ObservationError(f"{source}: {len(df)} points cannot determine {min_points} parameters; "
                               f"need at least {min_points}")
    if df["N"].nunique() < 2:
        raise ObservationError(f"{source}: every point has the same model size N, so the exponent of N is not "
                               "identifiable; add runs at other sizes")
    if df["D"].nunique() < 2:
        raise ObservationError(f"{source}: every point has the same token count D, so the exponent of D is not "
                               "identifiable; add runs at other token counts")
    get = (lambda c: df[c].to_numpy() if c in df.columns else None)
    return Observations(df["N"].to_numpy(float), df["D"].to_numpy(float), df["loss"].to_numpy(float),
                        get("U"), get("weight"), None if "run" not in df.columns else df["run"].astype(str).to_numpy(),
                        None if "budget" not in df.columns else df["budget"].to_numpy(float))


def read_observations(path: str | Path, min_points: int = 5) -> Observations:
    """CSV, Parquet or JSON (records or JSON lines) with N, D or C, loss."""
    p = Path(path)
    if not p.exists():
        raise ObservationError(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(p)
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        elif suffix in (".json", ".jsonl"):
            try:
                df = pd.read_json(p)
            except ValueError:
                df = pd.read_json(p, lines=True)
        else:
            raise ObservationError(f"{p}: unknown format '{suffix}'; expected .csv, .parquet or .json")
    except ObservationError:
        raise
    except Exception as exc:  # pandas raises many types for unreadable files
        raise ObservationError(f"{p}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    return from_frame(df, str(p), min_points)

"""Accelerator peak throughput (dense, no sparsity) per precision and memory, from vendor
datasheets; the table is data (`scaling/data/hardware.toml`) with a source per row.

Never guess an unknown device or precision: an unknown name is an error listing the known ones,
and a chip without fp8 (A100, TPU v4/v5) is an error for fp8 rather than its int8 figure; callers
may pass a measured or datasheet peak instead (labelled as such).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("bf16", "fp8")


@dataclass(frozen=True)
class GPU:
    name: str
    peak_tflops_bf16: float  # dense
    memory_gb: float
    source: str
    peak_tflops_fp8: float | None = None  # dense; None where the chip has no fp8 tensor cores

    def peak(self, precision: str = "bf16") -> float:
        """Dense peak TFLOP/s at a training precision (bf16 or fp8)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        value = self.peak_tflops_bf16 if precision == "bf16" else self.peak_tflops_fp8
        if value is None:
            raise ValueError(f"{self.name} has no {precision} tensor cores ({self.source}); plan in bf16 or give "
                             "--peak-tflops")
        return value


def _load() -> dict[str, GPU]:
    rows = tomllib.loads((Path(__file__).parent / "data" / "hardware.toml").read_text(encoding="utf-8"))
    return {name: GPU(name, float(r["bf16"]), float(r["memory_gb"]), r["source"],
                      float(r["fp8"]) if "fp8" in r else None) for name, r in rows.items()}


GPUS: dict[str, GPU] = _load()
ALIASES = {"a100": "a100-80gb", "a100-sxm": "a100-80gb", "h100-sxm5": "h100-sxm", "h200-sxm": "h200",
           "h800-sxm": "h800", "tpuv4": "tpu-v4", "tpuv5e": "tpu-v5e", "tpuv5p": "tpu-v5p", "v4": "tpu-v4",
           "v5e": "tpu-v5e", "v5p": "tpu-v5p"}
AMBIGUOUS = {"h100": ("h100-sxm", "h100-pcie", "h100-nvl")}


def get_gpu(name: str) -> GPU:
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    if key in AMBIGUOUS:
        raise KeyError(f"GPU '{name}' is ambiguous: say which of {', '.join(AMBIGUOUS[key])}")
    key = ALIASES.get(key, key)
    if key not in GPUS:
        raise KeyError(f"unknown GPU '{name}'; known: {', '.join(sorted(GPUS))} "
                       "(or give its peak with --peak-tflops)")
    return GPUS[key]

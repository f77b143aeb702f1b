"""Accelerator peak throughput and memory (dense bf16, no sparsity), from vendor datasheets.

Never guess an unknown device: an unknown name is an error listing the known ones; callers may
pass a measured or datasheet peak instead (labelled as such).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    name: str
    peak_tflops_bf16: float  # dense
    memory_gb: float
    source: str


GPUS: dict[str, GPU] = {g.name: g for g in [
    GPU("a100-40gb", 312.0, 40, "NVIDIA A100 datasheet (bf16 tensor core, dense)"),
    GPU("a100-80gb", 312.0, 80, "NVIDIA A100 datasheet (bf16 tensor core, dense)"),
    GPU("h100-sxm", 989.4, 80, "NVIDIA H100 datasheet, SXM5 (bf16 dense = 1,979 sparse / 2)"),
    GPU("h100-pcie", 756.0, 80, "NVIDIA H100 datasheet, PCIe (bf16 dense)"),
    GPU("h100-nvl", 835.0, 94, "NVIDIA H100 NVL datasheet (bf16 dense, per GPU)"),
    GPU("h200", 989.0, 141, "NVIDIA H200 datasheet, SXM (bf16 dense)"),
    GPU("l4", 121.0, 24, "NVIDIA L4 datasheet (bf16 dense = 242 sparse / 2)"),
    GPU("a10", 125.0, 24, "NVIDIA A10 datasheet (bf16 dense = 250 sparse / 2)"),
    GPU("l40s", 362.05, 48, "NVIDIA L40S datasheet (bf16 dense = 733 sparse / 2)"),
    GPU("mi300x", 1307.4, 192, "AMD Instinct MI300X datasheet (bf16 dense)"),
]}
ALIASES = {"a100": "a100-80gb", "a100-sxm": "a100-80gb", "h100-sxm5": "h100-sxm", "h200-sxm": "h200"}
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

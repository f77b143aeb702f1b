"""Batch size and peak learning rate from published compute laws.

DeepSeek LLM (Bi et al. 2024, sec. 3.1, eq. 1): eta_opt = 0.3118·C^-0.1250 and
B_opt = 0.2920·C^0.3271 tokens, with C = M·D in DeepSeek's accounting (M: non-embedding FLOPs
per token, `scaling.accounting`), fitted on grid searches at budgets of 1e17 to 2e19 FLOPs (their
fig. 3) for AdamW with a multi-step schedule. Checked against the runs the paper reports: 7B
(30 layers, d 4096, seq 4096, 2T tokens) trained at lr 4.2e-4 with 2,304 x 4,096 tokens a batch,
67B (95 layers, d 8192) at 3.2e-4 with 4,608 x 4,096 (tests/scaling/test_published.py).

Porian et al. 2024 also derive batch and learning-rate laws; their coefficients are not shipped
here because they could not be checked against a published run in this repository.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scaling.accounting import Shape, flops_per_token


@dataclass(frozen=True)
class HyperLaw:
    name: str
    source: str
    lr_coef: float
    lr_exp: float
    batch_coef: float
    batch_exp: float
    accounting: str
    fitted_flops: tuple[float, float]
    optimizer: str

    def at(self, C: float) -> tuple[float, float]:
        """(peak learning rate, batch size in tokens) at compute C in this law's accounting."""
        return self.lr_coef * C ** self.lr_exp, self.batch_coef * C ** self.batch_exp


DEEPSEEK_2024 = HyperLaw(
    "deepseek-2024", "Bi et al. 2024, 'DeepSeek LLM', sec. 3.1, eq. 1", 0.3118, -0.1250, 0.2920, 0.3271,
    "deepseek", (1e17, 2e19), "AdamW (beta1 0.9, beta2 0.95, weight decay 0.1), 2,000 warm-up steps, multi-step "
    "schedule (80% / 90% of tokens: x0.316, x0.1)")
HYPER_LAWS = {DEEPSEEK_2024.name: DEEPSEEK_2024}
EXTRAPOLATION_WARN = 10.0


def hyperparams(flops: float | None, accounting: str = "6nd", shape: Shape | None = None, tokens: float | None = None,
                law: HyperLaw = DEEPSEEK_2024, seq: int | None = None) -> dict:
    """Batch size and learning rate for a run of `flops` compute counted in `accounting`.

    With a shape and tokens the compute is the law's own M·D exactly; otherwise a budget in
    another accounting is converted through the DeepSeek allocation's reference shape
    (`scaling.planning.in_law_accounting`), and the answer says so."""
    exact = shape is not None and bool(tokens)
    if not exact and not (isinstance(flops, (int, float)) and math.isfinite(flops) and 1e6 <= flops <= 1e35):
        raise ValueError(f"flops must be a finite number in [1e6, 1e35], got {flops!r} (or give a shape and tokens)")
    note = None
    if exact:
        c_law = flops_per_token(law.accounting, shape) * tokens
        note = (f"C = M·D = {flops_per_token(law.accounting, shape):.4g} x {tokens:.4g} from the shape "
                f"({shape.layers:g} layers, d_model {shape.hidden:g}, seq {shape.seq})")
    elif accounting == law.accounting:
        c_law = float(flops)
    else:
        from scaling.allocation import in_law_accounting
        from scaling.laws import PUBLISHED

        conv = in_law_accounting(PUBLISHED["deepseek-2024"].law, flops, seq=seq or (shape.seq if shape else None))
        c_law = conv["law_flops"]
        note = conv.get("accounting", {}).get("note")
    lr, batch = law.at(c_law)
    seq = seq or (shape.seq if shape else None)
    out = {"law": law.name, "source": law.source, "optimizer": law.optimizer, "flops": flops,
           "accounting": accounting, "law_flops": c_law, "learning_rate": lr, "batch_tokens": batch,
           "fitted_flops": list(law.fitted_flops), "warnings": []}
    if seq:
        out["batch_sequences"] = batch / seq
        out["seq"] = seq
    if note:
        out["conversion"] = note
    lo, hi = law.fitted_flops
    if c_law > hi * EXTRAPOLATION_WARN or c_law < lo / EXTRAPOLATION_WARN:
        out["warnings"].append(
            f"{c_law:.3g} FLOPs is {max(c_law / hi, lo / c_law):,.0f}x outside the {lo:.0e}-{hi:.0e} FLOPs the "
            f"{law.name} hyper-parameter law was fitted on; DeepSeek's own 7B and 67B runs (8e22-1e24) sit on it, "
            "but treat the figures as a starting point for a sweep")
    return out


def law_table() -> list[dict]:
    return [{**asdict(h), "fitted_flops": list(h.fitted_flops)} for h in HYPER_LAWS.values()]

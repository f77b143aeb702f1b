"""Splitting a budget counted as 6·N·D by a law that counts compute its own way (Kaplan's
non-embedding N, DeepSeek's M·D): the conversion through the planned model's shape."""

from __future__ import annotations

from scaling import plan as P
from scaling.accounting import REFERENCE_SEQ, REFERENCE_VOCAB, flops_per_token, reference_shape
from scaling.laws import AllocationLaw


def in_law_accounting(law, C: float, seq: int | None = None, vocab: int | None = None) -> dict:
    """A budget C counted as 6·N·D (N all parameters) split by a law that counts compute its own
    way (`scaling.accounting`): the budget is converted through the planned model's shape (a
    reference shape of that size: d_model = 128·n_layer, `seq` and `vocab` as given or 4,096 and
    100,000) until the split is consistent, so 6·N·D = C for the N and D returned."""
    acc = law.accounting
    seq, vocab = seq or REFERENCE_SEQ, vocab if vocab is not None else REFERENCE_VOCAB

    def split(c):
        if isinstance(law, AllocationLaw):
            m, d = law.split(c)
            return float(m), float(d)
        return P.optimal_split(law, c)

    if acc == "6nd":
        m, d = split(C)
        return {"params": C / (6 * d) if isinstance(law, AllocationLaw) and law.model_coef is None else m,
                "tokens": d, "law_flops": C, "law_model": m}
    c_law = C
    for _ in range(60):
        m, d = split(c_law)
        shape = (reference_shape(non_embedding_params=m, seq=seq, vocab=vocab) if acc == "kaplan"
                 else reference_shape(deepseek_m=m, seq=seq, vocab=vocab))
        new = C * flops_per_token(acc, shape) / flops_per_token("6nd", shape)
        if abs(new / c_law - 1) < 1e-10:
            break
        c_law = new
    what = ("non-embedding parameters, C = 6·N·D" if acc == "kaplan" else
            "C = M·D, M = 72·n_layer·d² + 12·n_layer·d·seq non-embedding FLOPs per token")
    return {"params": C / (6 * d), "tokens": d, "law_flops": c_law, "law_model": m, "accounting": {
        "law": acc, "budget": "6nd", "law_flops": c_law, "factor": c_law / C,
        "shape": {"layers": round(shape.layers, 1), "hidden": round(shape.hidden), "seq": seq, "vocab": vocab},
        "note": (f"'{law.name}' counts compute as {acc} ({what}); the budget's {C:.4g} FLOPs as 6·N·D "
                 f"(N all parameters) are {c_law:.4g} in its accounting, through a reference shape of "
                 f"{shape.layers:.0f} layers x d_model {shape.hidden:.0f} (aspect 128, seq {seq}, vocab {vocab:,})")}}

"""FLOP accountings: what "compute C" counts, per training token, and conversions between them.

- `6nd`: C = 6·N·D, N all parameters (Kaplan et al. 2020 sec. 2.1 with N total; Hoffmann et al.
  2022's plans; Taomi's default).
- `kaplan`: C = 6·N·D with N the non-embedding parameters (Kaplan et al. 2020, sec. 2.1: the
  2·n_layer·n_ctx·d_attn context term and the embeddings are left out).
- `hoffmann`: Hoffmann et al. 2022, appendix F: embeddings, Q/K/V, the Q·K logits, softmax, the
  scores·V reduction, the output projection, the dense block and the final logits, forward x 3.
- `deepseek`: C = M·D with M = 72·n_layer·d² + 12·n_layer·d·l_seq, the non-embedding FLOPs per
  token with attention and without the vocabulary (DeepSeek LLM, Bi et al. 2024, eq. 2).

The last three need a model shape. A plan that converts a budget between accountings uses the
planned model's shape when the user gives one, else a reference shape (`reference_shape`: depth
and width in the aspect ratio d_model = 128·n_layer of GPT-3 175B and Llama 3 405B) and says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

ACCOUNTINGS = ("6nd", "kaplan", "hoffmann", "deepseek")
REFERENCE_ASPECT = 128.0  # d_model / n_layer: GPT-3 175B 12288/96 = 128, Llama 3 405B 16384/126 = 130
REFERENCE_SEQ = 4096
REFERENCE_VOCAB = 100_000


@dataclass(frozen=True)
class Shape:
    """A dense transformer's shape. ffn: MLP width (4·hidden by default; a SwiGLU of width f counts
    as a 1.5·f two-matrix MLP); key_size: head dimension (hidden / heads by default)."""

    layers: float
    hidden: float
    seq: int = REFERENCE_SEQ
    vocab: int = REFERENCE_VOCAB
    heads: int | None = None
    ffn: float | None = None
    key_size: float | None = None
    tied_embeddings: bool = True

    def __post_init__(self) -> None:
        for k in ("layers", "hidden", "seq"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{k} must be a positive number, got {v!r}")
        if self.vocab < 0:
            raise ValueError("vocab must be >= 0")

    @property
    def ffn_width(self) -> float:
        return self.ffn if self.ffn else 4.0 * self.hidden

    @property
    def attn_width(self) -> float:
        """key_size x heads (= hidden unless the shape says otherwise)."""
        if self.key_size and self.heads:
            return self.key_size * self.heads
        return self.hidden

    def non_embedding_params(self) -> float:
        """4·d·d_attn (Q, K, V, O) + 2·d·d_ff a layer (Kaplan et al. 2020, table 1)."""
        return self.layers * (4 * self.hidden * self.attn_width + 2 * self.hidden * self.ffn_width)

    def params(self) -> float:
        return self.non_embedding_params() + self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def as_dict(self) -> dict:
        return {**asdict(self), "params": self.params(), "non_embedding_params": self.non_embedding_params()}


def hoffmann_forward_per_sequence(s: Shape) -> float:
    """Hoffmann et al. 2022, appendix F, forward FLOPs of one sequence."""
    seq, d, v, kh = s.seq, s.hidden, s.vocab, s.attn_width
    heads = s.heads or max(1.0, d / 128)
    embeddings = 2 * seq * v * d
    attention = (2 * 3 * seq * d * kh  # key, query and value projections
                 + 2 * seq * seq * kh  # key @ query logits
                 + 3 * heads * seq * seq  # softmax
                 + 2 * seq * seq * kh  # softmax @ value reductions
                 + 2 * seq * kh * d)  # final linear
    dense = 2 * seq * (d * s.ffn_width + d * s.ffn_width)
    logits = 2 * seq * d * v
    return embeddings + s.layers * (attention + dense) + logits


def flops_per_token(accounting: str, shape: Shape | None = None, params: float | None = None) -> float:
    """Training FLOPs per token in an accounting (forward + backward = 3 x forward)."""
    if accounting not in ACCOUNTINGS:
        raise ValueError(f"accounting must be one of {', '.join(ACCOUNTINGS)}, not {accounting!r}")
    if accounting == "6nd":
        if params is None and shape is None:
            raise ValueError("6nd needs the parameter count or a shape")
        return 6.0 * (params if params is not None else shape.params())
    if shape is None:
        raise ValueError(f"the {accounting} accounting counts FLOPs from a model shape: give layers and hidden size")
    if accounting == "kaplan":
        return 6.0 * shape.non_embedding_params()
    if accounting == "deepseek":
        return 72.0 * shape.layers * shape.hidden ** 2 + 12.0 * shape.layers * shape.hidden * shape.seq
    return 3.0 * hoffmann_forward_per_sequence(shape) / shape.seq


def all_accountings(shape: Shape, tokens: float | None = None) -> list[dict]:
    """Every accounting for one shape, per token and (with tokens) in total, against 6ND."""
    base = flops_per_token("6nd", shape)
    rows = []
    for acc in ACCOUNTINGS:
        f = flops_per_token(acc, shape)
        rows.append({"accounting": acc, "flops_per_token": f, "vs_6nd": f / base,
                     **({"flops": f * tokens} if tokens else {})})
    return rows


def reference_shape(*, non_embedding_params: float | None = None, deepseek_m: float | None = None,
                    seq: int = REFERENCE_SEQ, vocab: int = REFERENCE_VOCAB, aspect: float = REFERENCE_ASPECT) -> Shape:
    """A continuous shape of the given size with d_model = aspect x n_layer and a 4d MLP: from the
    non-embedding parameters (12·L·d² = N) or from DeepSeek's M (72·L·d² + 12·L·d·s = M)."""
    if (non_embedding_params is None) == (deepseek_m is None):
        raise ValueError("give non_embedding_params or deepseek_m")
    if non_embedding_params is not None:
        layers = (non_embedding_params / (12.0 * aspect ** 2)) ** (1 / 3)
    else:  # 72 a² L³ + 12 a s L² = M: one positive root, by bisection in log space
        lo, hi = 1e-6, 1e6
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            if 72 * aspect ** 2 * mid ** 3 + 12 * aspect * seq * mid ** 2 < deepseek_m:
                lo = mid
            else:
                hi = mid
        layers = math.sqrt(lo * hi)
    return Shape(layers=layers, hidden=aspect * layers, seq=seq, vocab=vocab)


def convert(flops: float, from_accounting: str, to_accounting: str, shape: Shape) -> float:
    """The same training run's compute in another accounting."""
    return flops * flops_per_token(to_accounting, shape) / flops_per_token(from_accounting, shape)

"""A small decoder-only transformer as current practice builds it (torch; imported only by
scaling/calibrate.py): Pre-LN with RMSNorm, rotary position embeddings, causal attention through
F.scaled_dot_product_attention, SwiGLU MLP, optional tied embeddings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    vocab: int = 256
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    seq: int = 128
    mlp_ratio: float = 8 / 3  # SwiGLU width that keeps parameters ~ a 4x GELU MLP
    tied: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def mlp_hidden(self) -> int:
        return int(math.ceil(self.mlp_ratio * self.hidden / 64) * 64)

    def as_dict(self) -> dict:
        return asdict(self)


SIZES = {
    "tiny": ModelConfig(layers=2, hidden=64, heads=4, seq=128),
    "small": ModelConfig(layers=4, hidden=128, heads=4, seq=256),
    "124m": ModelConfig(vocab=50304, layers=12, hidden=768, heads=12, seq=1024),
    "350m": ModelConfig(vocab=50304, layers=24, hidden=1024, heads=16, seq=1024),
}


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.n1 = nn.RMSNorm(cfg.hidden)
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden, bias=False)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.n2 = nn.RMSNorm(cfg.hidden)
        self.up = nn.Linear(cfg.hidden, 2 * cfg.mlp_hidden, bias=False)
        self.down = nn.Linear(cfg.mlp_hidden, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.cfg.heads, self.cfg.head_dim).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, -1))
        g, u = self.up(self.n2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(g) * u)


class TinyLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab, cfg.hidden)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.RMSNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        if cfg.tied:
            self.head.weight = self.emb.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def rope_tables(self, t: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.cfg.head_dim
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=device, dtype=torch.float32) / d))
        ang = torch.outer(torch.arange(t, device=device, dtype=torch.float32), inv)
        return ang.cos(), ang.sin()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        cos, sin = self.rope_tables(idx.shape[1], idx.device)
        x = self.emb(idx)
        for blk in self.blocks:
            x = blk(x, cos.to(x.dtype), sin.to(x.dtype))
        logits = self.head(self.norm(x))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))

    def num_params(self) -> int:
        """Parameters counted once (tied embedding = the output projection's matmul)."""
        return sum(p.numel() for p in self.parameters())


def flops_per_token(cfg: ModelConfig, n_params: int, seq: int, causal_halved: bool = False) -> float:
    """6N + 12·L·H·Q·T (PaLM app. B; nanoGPT estimate_mfu). The attention term counts the full
    T x T score matrix (what SDPA's math kernel computes) unless `causal_halved`."""
    attn = 12 * cfg.layers * cfg.heads * cfg.head_dim * seq
    return 6 * n_params + (attn / 2 if causal_halved else attn)

"""Planning and calculators against published figures."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scaling import plan as P
from scaling.compute import (
    MemoryQuery,
    activation_bytes_per_layer,
    flops_per_token,
    kv_cache_bytes,
    memory,
    moe_params,
    param_count,
    train_time,
    training_flops,
    training_state_bytes,
    training_time,
)
from scaling.hardware import get_gpu
from scaling.laws import DEFAULT_LAW, ChinchillaLaw, get_law
from taomi.cli import app

runner = CliRunner()


def test_chinchilla_closed_form_gives_40b_at_5_76e23():
    n, d = P.optimal_split(get_law("chinchilla-2022"), 5.76e23)
    assert 39e9 < n < 41e9  # Hoffmann et al. 2022, Figure 4 caption (approach 3): ~40B
    assert 6 * n * d == pytest.approx(5.76e23)


def test_numeric_optimum_matches_closed_form():
    law = get_law("chinchilla-2022")

    class Wrapped:  # same law, but not a ChinchillaLaw: forces the numeric path
        kind = "other"

        def predict_loss(self, N, D):
            return law.predict_loss(N, D)

    for c in (1e20, 1e23):
        assert P.optimal_split(Wrapped(), c)[0] == pytest.approx(P.optimal_split(law, c)[0], rel=1e-5)


def test_inverse_queries_round_trip():
    law = get_law("chinchilla-2022")
    p = P.plan(law, 1e22)
    inv = P.flops_for_loss(law, p["loss"])
    assert inv["flops"] == pytest.approx(1e22, rel=1e-6)
    t = P.tokens_for_params(law, p["params"])
    assert t["tokens"] == pytest.approx(p["tokens"], rel=1e-9)
    n = P.params_for_tokens(law, p["tokens"])
    assert n["params"] == pytest.approx(p["params"], rel=1e-9)
    with pytest.raises(ValueError, match="irreducible"):
        P.flops_for_loss(law, 1.0)


def test_isoflop_profile_minimum_at_optimum_and_marginals_balance():
    law = get_law("chinchilla-2022")
    prof = P.isoflop_profile(law, 1e21)
    assert min(prof, key=lambda r: r["loss"])["factor"] == 1.0
    n, d = P.optimal_split(law, 1e21)
    m = P.marginal_returns(law, n, d)
    # at the optimum, dL/dlnN = dL/dlnD (Lagrange condition of min L s.t. 6ND = C)
    assert m["dloss_dlog_params"] == pytest.approx(m["dloss_dlog_tokens"], rel=1e-9)
    exps = P.suggested_experiments(law, 1e22)
    assert len(exps) == 15 and all(e["flops"] < 1e22 for e in exps)


def test_repetition_moves_the_optimum_and_caps_epochs():
    law = get_law("muennighoff-2023")
    r = P.repetition_plan(law, 1e23, 1e11)
    assert r["constrained"]["loss"] >= r["unconstrained"]["loss"]
    assert r["constrained"]["epochs"] > 1
    assert 10 < r["epochs_worth_it"] < 12  # exp(-R/15.4) >= 0.5  =>  R <= 10.7 repeats
    assert [row["effective_tokens"] <= row["tokens"] + 1 for row in r["table"]] == [True] * 7


def test_gpt3_training_time_mfu_vs_hfu():
    a100 = get_gpu("a100").peak_tflops_bf16
    # MFU counts model FLOPs (6ND) whatever is recomputed (PaLM): MFU 0.45 -> ~25.3 days.
    t = training_time(175e9, 300e9, 1024, a100, 0.45, "full")
    assert round(t["days"], 1) == 25.4 and t["hfu"] == pytest.approx(0.6)
    assert t["hardware_flops"] == pytest.approx(8 * 175e9 * 300e9)
    assert training_time(175e9, 300e9, 1024, a100, 0.45)["days"] == t["days"]  # recompute does not change MFU time
    # The ~34 days quoted for GPT-3 is HFU 0.45 with full recompute, i.e. MFU 0.45 * 6/8.
    assert round(training_time(175e9, 300e9, 1024, a100, 0.45 * 6 / 8, "full")["days"], 1) == 33.8
    with pytest.raises(ValueError, match="HFU"):
        training_time(1e9, 1e9, 1, a100, 0.9, "full")
    assert train_time(training_flops(1e9, 1e9), 1, a100, 0.5)["hfu"] == 0.5


def test_gpt3_activation_memory_korthikanti():
    s, b, h, a = 2048, 1, 12288, 96
    assert activation_bytes_per_layer(s, b, h, a) == s * b * h * (34 + 5 * a * s / h) == 2_868_903_936
    assert activation_bytes_per_layer(s, b, h, a, "selective", tp=8) == 34 * s * b * h / 8
    assert activation_bytes_per_layer(s, b, h, a, "full") == 2 * s * b * h
    # fp32 activations: the 16-bit values double, the 1-byte dropout masks do not: 66 sbh + 9 as^2 b.
    assert activation_bytes_per_layer(s, b, h, a, bytes_per_elem=4) == 66 * s * b * h + 9 * a * s * s * b


def test_memory_precision_logits_and_full_recompute():
    q = {"layers": 4, "hidden": 512, "heads": 8, "seq": 1024, "params": 1e8}
    fp32 = memory(MemoryQuery(**q, precision="fp32"))
    # fp32 Adam: weights 4 + grads 4 + moments 8 = 16 B/param (no master copy), not 20.
    assert (fp32["weights_bytes"] + fp32["gradient_bytes"] + fp32["optimizer_bytes"]) / 1e8 == 16
    assert training_state_bytes(1, "fp32") == 16 and training_state_bytes(1, "bf16") == 16
    assert fp32["activation_bytes"] > memory(MemoryQuery(**q))["activation_bytes"]
    # Logits in fp32: 4 x s x V; at V = 128K and s = 8K that is ~4.2 GB per sequence.
    big = memory(MemoryQuery(layers=1, hidden=4096, heads=32, seq=8192, vocab=128_000, params=1e9))
    assert big["logits_bytes"] == 4 * 8192 * 128_000 and big["logits_bytes"] > 4e9
    assert big["total_bytes"] >= big["logits_bytes"] + big["activation_bytes"]
    # Full recompute keeps each layer's input plus one whole layer while it is recomputed.
    full = memory(MemoryQuery(**q, recompute="full"))
    s, h, a = 1024, 512, 8
    assert full["activation_bytes"] == 4 * 2 * s * h + (34 * s * h + 5 * a * s * s)


def test_param_count_gqa_swiglu_matches_released_models():
    # LLaMA-2-7B and Llama-3-8B (GQA, 8 KV heads), as their checkpoints count them.
    assert param_count(32, 4096, 32, vocab=32_000, mlp="swiglu", tied_embeddings=False) == 6_738_415_616
    assert param_count(32, 4096, 32, kv_heads=8, vocab=128_256, ffn=14_336, mlp="swiglu",
                       tied_embeddings=False) == 8_030_261_248
    # GPT-style (no GQA, gelu, 4h): 12 L h^2 plus the norms.
    assert param_count(12, 768, 12) == 12 * 12 * 768 ** 2 + 12 * 2 * 768
    m = memory(MemoryQuery(layers=32, hidden=4096, heads=32, kv_heads=8, seq=8, vocab=128_256, ffn=14_336,
                           mlp="swiglu", tied_embeddings=False))
    assert m["params"] == 8_030_261_248


def test_kv_cache_gpt3_and_gqa_and_paging():
    per_token = kv_cache_bytes(1, 96, 96, 128, 1, 2)
    assert per_token == 4_718_592  # 2 x 2 B x 96 layers x 96 heads x 128
    assert kv_cache_bytes(1, 96, 8, 128, 1, 2) == per_token * 8 / 96  # GQA
    assert kv_cache_bytes(1, 96, 96, 128, 1, 1) == per_token / 2      # int8 / fp8
    assert kv_cache_bytes(1, 96, 96, 128, 17, 2, paged_block=16) == per_token * 32


def test_memory_zero_sharding_and_moe():
    q = {"layers": 24, "hidden": 2048, "heads": 16, "seq": 2048, "batch": 4, "params": 1e9}
    z0 = memory(MemoryQuery(**q))
    assert z0["weights_bytes"] == 2e9 and z0["gradient_bytes"] == 2e9 and z0["optimizer_bytes"] == 12e9
    z3 = memory(MemoryQuery(**q, zero=3, dp=8))
    assert z3["optimizer_bytes"] == 12e9 / 8 and z3["weights_bytes"] == 2e9 / 8
    assert memory(MemoryQuery(**q, optimizer="adam8bit"))["optimizer_bytes"] == 6e9
    m = moe_params(dense_params=1e9, expert_params=5e8, experts=8, top_k=2)
    assert (m["total_params"], m["active_params"]) == (5e9, 2e9)
    with pytest.raises(ValueError, match="kv_heads"):
        MemoryQuery(layers=2, hidden=64, heads=8, seq=16, kv_heads=3)


def test_flops_per_token_attention_term():
    assert flops_per_token(1e9, 24, 16, 128, 2048) == 6e9 + 12 * 24 * 16 * 128 * 2048
    assert flops_per_token(1e9, 24, 16, 128, 2048, causal_halved=True) == 6e9 + 6 * 24 * 16 * 128 * 2048


def test_unknown_and_ambiguous_gpu():
    with pytest.raises(KeyError, match="known: a10"):
        get_gpu("tpu-v9")
    with pytest.raises(KeyError, match="ambiguous"):
        get_gpu("H100")


def test_cli_plan_json_and_errors():
    out = json.loads(runner.invoke(app, ["plan", "--flops", "5.76e23", "--json"]).stdout)
    for k in ("params", "tokens", "loss", "flops", "tokens_per_param"):
        assert k in out
    r = json.loads(runner.invoke(app, ["plan", "--gpus", "8", "--gpu", "h100-sxm", "--days", "7", "--json"]).stdout)
    assert r["mfu"] == 0.4 and "default" in r["mfu_source"] and r["days"] == pytest.approx(7)
    t = json.loads(runner.invoke(app, ["estimate", "time", "--params", "175e9", "--tokens", "300e9", "--gpus", "1024",
                                       "--gpu", "a100", "--mfu", "0.45", "--recompute", "full", "--json"]).stdout)
    assert round(t["days"], 1) == 25.4 and t["hfu"] == pytest.approx(0.6) and "seconds" in t
    m = json.loads(runner.invoke(app, ["estimate", "memory", "--layers", "96", "--hidden", "12288", "--heads", "96",
                                       "--seq", "2048", "--batch", "1", "--generate", "100", "--json"]).stdout)
    for k in ("weights_bytes", "optimizer_bytes", "activation_bytes", "kv_cache_bytes", "total_bytes"):
        assert k in m
    assert m["kv_cache_bytes"] == 4_718_592 * 2148
    bad = runner.invoke(app, ["plan", "--gpus", "8", "--gpu", "tpu", "--days", "1"])
    assert bad.exit_code == 2 and "unknown GPU" in bad.stderr
    bad = runner.invoke(app, ["plan", "--flops", "-1"])
    assert bad.exit_code == 2 and "flops" in bad.stderr


def test_plan_ci_from_bootstrapped_fit(tmp_path):
    import numpy as np
    import pandas as pd

    from flows.plan_task import law_from_fit, resolve_law
    from flows.scaling_task import fit_file
    from warehouse.db import connect

    law = ChinchillaLaw(E=1.7, A=400, B=410, alpha=0.34, beta=0.28)
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(5e7, 5e9, 6), 6)
    D = np.tile(np.geomspace(1e9, 2e11, 6), 6)
    pd.DataFrame({"N": N, "D": D, "loss": law.predict_loss(N, D) * np.exp(rng.normal(0, 0.004, 36))}).to_csv(
        tmp_path / "obs.csv", index=False)
    db = str(tmp_path / "p.duckdb")
    fit_file(db, tmp_path / "obs.csv", bootstrap=40, name="mine")
    con = connect(db, read_only=True)
    lw, samples, desc, _info = resolve_law(con, fit="mine")
    con.close()
    assert len(samples) == 40 and "mine" in desc
    p = P.plan(lw, 1e22, samples)
    assert p["ci"]["params"][0] < p["params"] < p["ci"]["params"][1]
    assert law_from_fit({"law": "chinchilla", "name": "x", "params": lw.params()})[0] == lw.__class__(**lw.params(), name="x")


def test_cli_moe():
    out = json.loads(runner.invoke(app, ["estimate", "moe", "--dense-params", "1e9", "--expert-params", "5e8",
                                         "--experts", "8", "--top-k", "2", "--tokens", "1e11", "--json"]).stdout)
    assert out["total_params"] == 5e9 and out["active_params"] == 2e9
    assert out["training_flops"] == 6 * 2e9 * 1e11 and out["weights_bytes"] == 5e9 * 2
    bad = runner.invoke(app, ["estimate", "moe", "--dense-params", "1e9", "--expert-params", "5e8", "--experts", "2",
                              "--top-k", "4", "--tokens", "1e11"])
    assert bad.exit_code == 2 and "top_k cannot exceed experts" in bad.stderr


def test_cli_inverse_for_fixed_size():
    law = get_law(DEFAULT_LAW)
    n, d = P.optimal_split(law, 1e22)
    out = json.loads(runner.invoke(app, ["plan", "--params", str(n), "--json"]).stdout)
    assert out["tokens"] == pytest.approx(d, rel=1e-9) and out["flops"] == pytest.approx(1e22, rel=1e-9)
    out = json.loads(runner.invoke(app, ["plan", "--tokens", str(d), "--json"]).stdout)
    assert out["params"] == pytest.approx(n, rel=1e-9)
    bad = runner.invoke(app, ["plan", "--params", "1e9", "--tokens", "1e10", "--flops", "1e22"])
    assert bad.exit_code == 2 and "predicts a loss" in bad.stderr


def test_mfu_rule_given_then_comparable_calibration_then_default():
    from scaling.planning import DEFAULT_MFU, PlanRequest, choose_mfu

    cal = [{"mfu": 0.31, "params": 124e6, "created_at": "t"}]
    assert choose_mfu(0.5, cal, 70e9) == (0.5, "given")
    assert choose_mfu(None, cal, 70e9)[0] == DEFAULT_MFU  # a 124M calibration never speaks for 70B
    assert choose_mfu(None, cal, 1.2e9)[0] == 0.31 and choose_mfu(None, cal, 12.4e6)[0] == 0.31
    assert choose_mfu(None, [], 1e9) == (DEFAULT_MFU, (f"default {DEFAULT_MFU} (no calibration for this GPU; "
                                                      "run `taomi calibrate`)"))
    with pytest.raises(ValueError, match="not both"):
        PlanRequest(law="chinchilla-2022", fit="mine", flops=1e23)
    with pytest.raises(ValueError, match="give flops, or gpus"):
        PlanRequest(gpus=8)

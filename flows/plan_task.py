"""Planning: the one entry point (`answer`) that the CLI, the HTTP service and the Prefect flow
call. It reads what the answer needs from the warehouse (a stored fit, the GPU's calibrations)
and hands them to the pure `scaling.planning.answer_with`; the MFU rule is documented there.
"""

from __future__ import annotations

from dataclasses import replace

from scaling.laws import (
    DEFAULT_LAW,
    PUBLISHED,
    ChinchillaLaw,
    DataConstrainedLaw,
    KaplanLaw,
    get_law,
    published_samples,
    read_law_file,
    samples_of,
)
from scaling.planning import Effort, PlanRequest, answer_with, data_verdict


def law_from_fit(row: dict):
    p = row["params"]
    if row["law"] == "chinchilla":
        law = ChinchillaLaw(**{k: p[k] for k in ("E", "A", "B", "alpha", "beta")}, name=row["name"])
    elif row["law"] == "kaplan":
        law = KaplanLaw(**{k: p[k] for k in ("N_c", "D_c", "alpha_N", "alpha_D", "L_inf")}, name=row["name"])
    else:
        base = ChinchillaLaw(**{k: p[k] for k in ("E", "A", "B", "alpha", "beta")})
        law = DataConstrainedLaw(base=base, R_D_star=p["R_D_star"], R_N_star=p["R_N_star"], name=row["name"])
    samples = None
    if row.get("samples") and row["law"] == "chinchilla":
        samples = [ChinchillaLaw(A=s[0], B=s[1], E=s[2], alpha=s[3], beta=s[4]) for s in row["samples"]
                   if s[3] > 0 and s[4] > 0]
    return law, samples


def resolve_law(con, law: str | None = None, fit: str | None = None, law_file: str | None = None):
    """(law, bootstrap sample laws or None, description, info: name, source, warning, the ranges
    it was fitted on, and for a fit its poorly determined parameters)."""
    if fit:
        if con is None:
            raise LookupError("no database to read fits from")
        from warehouse.scaling_store import fitted_ranges, get_fit  # only a stored fit needs the warehouse

        row = get_fit(con, fit)
        if row is None:
            raise LookupError(f"no stored fit named '{fit}' (see `taomi fits`)")
        lw, samples = law_from_fit(row)
        return lw, samples, f"fit '{fit}' ({row['law']}, {row['n_points']} points)", {
            "name": fit, "source": f"stored fit of {row['n_points']} points", "warning": "",
            "fitted": fitted_ranges(con, row["inputs_hash"]), "poorly_determined": row.get("poorly_determined") or [],
            "inputs_hash": row["inputs_hash"]}
    if law_file:
        pub = read_law_file(law_file)
        samples = samples_of(pub.samples_file) if pub.samples_file else None
        return pub.law, list(samples) if samples else None, f"law file '{law_file}' ({pub.law.name})", {
            "name": pub.law.name, "source": pub.citation, "warning": pub.warning, "fitted": pub.fitted,
            "bootstrap_samples": len(samples) if samples else 0, "law_file": str(law_file)}
    name = law or DEFAULT_LAW
    lw = get_law(name)
    pub = PUBLISHED[name]
    samples = published_samples(name)
    info = {"name": name, "source": pub.citation, "warning": pub.warning, "default": name == DEFAULT_LAW,
            "bootstrap_samples": len(samples) if samples else 0, "fitted": pub.fitted}
    return lw, list(samples) if samples else None, f"published law '{name}'", info


def answer(req: PlanRequest, con=None, effort: Effort | None = None) -> dict:
    """The plan (or inverse answer) for a request. `con`: a warehouse connection, or None when
    there is no database (published laws and given MFUs need none). `effort`: how much work the
    answer may do (the HTTP service bounds it; see scaling.planning.Effort)."""
    data = None
    if req.corpus is not None:
        if con is None:
            raise LookupError(f"no database to read corpus '{req.corpus}' from")
        data = corpus_tokens(con, req.corpus)
        req = replace(req, corpus=None, unique_tokens=float(data["unique_tokens"]))
    law, samples, desc, info = resolve_law(con, req.law, req.fit, req.law_file)
    calibrations = []
    if con is not None and req.needs_calibration:
        from warehouse.calibration_store import calibrations_for

        calibrations = calibrations_for(con, req.gpu)
    if req.fit and req.kind == "budget" and info.get("inputs_hash"):
        info["approaches"] = fit_approaches(con, info.pop("inputs_hash"), req)
    info.pop("inputs_hash", None)
    out = answer_with(req, law, samples, desc, calibrations, info, effort)
    if data is not None:
        out["data"] = {**data, **data_verdict(out, data["unique_tokens"])}
    return out


def fit_approaches(con, inputs_hash: str, req: PlanRequest) -> dict | None:
    """Approaches 2 and 3 on the fit's own observations, N_opt apart at the plan's budget (no
    bootstrap: the point estimates); None when the data allow fewer than two approaches."""
    from scaling.approaches import compare
    from scaling.observations import from_frame
    from warehouse.scaling_store import observations_of

    frame = observations_of(con, inputs_hash)
    if len(frame) < 6:
        return None
    flops = req.flops
    if flops is None:
        return None  # a GPU budget's compute is known only after the MFU choice; plan with --flops to compare
    try:
        cmp = compare(from_frame(frame), reference_flops=flops, n_boot=0)
    except (ValueError, FloatingPointError):
        return None
    spread = cmp.get("disagreement")
    return {"disagreement": spread["params_opt_ratio"], "a_range": spread["a_range"]} if spread else None


def needs_database(req: PlanRequest) -> bool:
    return bool(req.fit) or req.needs_calibration or req.corpus is not None


def corpus_tokens(con, corpus: str) -> dict:
    """The unique tokens of a curated corpus: its stored token counts (the tokenizer it was last
    counted with), documents dedup kept, less those decontamination flagged against the
    registered eval sets; the runs they come from, and the tokens per source."""
    from flows.decontam_task import N_GRAM, RULE
    from warehouse.plan_store import curated_tokens

    data = curated_tokens(con, corpus, N_GRAM, RULE)
    if data["documents"] == 0:
        raise LookupError(f"corpus '{corpus}' has no documents (see `taomi corpora`)")
    if data["tokenizer"] is None:
        raise LookupError(f"corpus '{corpus}' has no token counts: run `taomi tokens {corpus}` (or ingest with "
                          "--tokenizer)")
    if data["documents_counted"] < data["documents"]:
        raise LookupError(f"corpus '{corpus}' has token counts for {data['documents_counted']:,} of "
                          f"{data['documents']:,} documents ({data['tokenizer']}): run `taomi tokens {corpus}`")
    if data["unique_tokens"] <= 0:
        raise LookupError(f"corpus '{corpus}' has no tokens left after dedup and decontamination")
    return data


def design_next_runs(con, fit: str, budget: float, simulations: int = 20, seq: int | None = None,
                     seed: int = 0) -> dict:
    """The next sweep runs for a stored Chinchilla-form fit (scaling.design): greedy isoFLOP runs
    that narrow the allocation exponent most per FLOP within `budget`, each with DeepSeek LLM's
    learning rate and batch for its compute, and the exponent's interval now and after, simulated."""
    from scaling.design import design, simulate_interval
    from scaling.hyperparams import DEEPSEEK_2024, hyperparams
    from scaling.observations import from_frame
    from warehouse.scaling_store import get_fit, observations_of

    row = get_fit(con, fit)
    if row is None:
        raise LookupError(f"no stored fit named '{fit}' (see `taomi fits`)")
    if row["law"] != "chinchilla":
        raise ValueError(f"the designer works on a Chinchilla-form fit; '{fit}' is {row['law']}")
    law, _ = law_from_fit(row)
    obs = from_frame(observations_of(con, row["inputs_hash"]), f"fit '{fit}'")
    out = design(law, obs, budget)
    for r in out["runs"]:
        hp = hyperparams(r["flops"], "6nd", seq=seq)
        r.update(learning_rate=hp["learning_rate"], batch_tokens=hp["batch_tokens"])
    if simulations:
        out["interval"] = simulate_interval(law, obs, out["runs"], out["sigma"], simulations=simulations, seed=seed)
    lo, hi = DEEPSEEK_2024.fitted_flops
    out.update(fit=fit, points=len(obs), hyperparams_source=f"{DEEPSEEK_2024.source} (fitted on {lo:.0e}-{hi:.0e} FLOPs)")
    return out

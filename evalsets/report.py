"""The hard-set report: one self-contained HTML file (plots embedded), a Markdown summary, JSON."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def slice_chart(slices: dict[str, dict], metric: str) -> str:
    names = list(slices)
    vals = [slices[s]["metric"] for s in names]
    lo = [max(0.0, v - slices[s]["ci"][0]) for s, v in zip(names, vals)]
    hi = [max(0.0, slices[s]["ci"][1] - v) for s, v in zip(names, vals)]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 3.6))
    ax.bar(range(len(names)), vals, yerr=[lo, hi], capsize=3, color="C0")
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax.set(ylabel=metric, ylim=(0, 1.05), title=f"{metric} per slice (95% bootstrap CI)")
    fig.tight_layout()
    return _png(fig)


def regression_chart(regression: dict[str, dict]) -> str:
    names = [s for s in regression if regression[s]["n"]]
    vals = [regression[s]["diff"] for s in names]
    lo = [max(0.0, v - regression[s]["ci"][0]) for s, v in zip(names, vals)]
    hi = [max(0.0, regression[s]["ci"][1] - v) for s, v in zip(names, vals)]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 3.6))
    ax.bar(range(len(names)), vals, yerr=[lo, hi], capsize=3, color=["C3" if v < 0 else "C2" for v in vals])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax.set(ylabel="current - previous", title="change vs previous run (paired 95% CI)")
    fig.tight_layout()
    return _png(fig)


def _table(rows: list[dict], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and v and all(isinstance(x, float) for x in v):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return "" if v is None else str(v)


def write_report(report: dict, outdir: str | Path) -> dict:
    """Write report.html, report.md and report.json into outdir; return their paths."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    metric = report["metric"]
    slices = report["slices"]
    slice_rows = [{"slice": s, "n": v["n"], metric: v["metric"], "se": v["se"], "95% CI": v["ci"]} for s, v in slices.items()]
    reg = report.get("regression") or {}
    reg_rows = [{"slice": s, "n": v["n"], "diff": v["diff"], "95% CI": v["ci"]} for s, v in reg.items()]
    gates = report.get("gates") or []
    failed = [g for g in gates if not g["passed"]]
    css = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
           "margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
           ".bad{color:#b00;font-weight:bold}.ok{color:#070}img{max-width:100%}")
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>Taomi eval: {html.escape(report['eval_set'])}</title>"
             f"<style>{css}</style></head><body>"),
             f"<h1>Hard-set report: {html.escape(report['eval_set'])}</h1>",
             (f"<p>run <code>{report['run_id']}</code> · model <b>{html.escape(report['model'])}</b> · eval-set hash "
             f"<code>{report['eval_set_hash']}</code> · git {html.escape(str(report.get('git_sha')))} · {report['created_at']}</p>"),
             f"<p>{metric}: <b>{slices['all']['metric']:.4f}</b> [{slices['all']['ci'][0]:.4f}, {slices['all']['ci'][1]:.4f}]"
             f" over {slices['all']['n']} items"
             + (f"; on the clean (uncontaminated) subset: <b>{slices['clean']['metric']:.4f}</b>" if "clean" in slices else "")
             + "</p>",
             f"<h2>Gates</h2><p class='{'bad' if failed else 'ok'}'>"
             + (f"{len(failed)} gate(s) failed: " + "; ".join(f"{g['gate']} on {g['slice']} -> {g['recommendation']}" for g in failed)
                if failed else ("all gates passed" if gates else "no gates configured")) + "</p>",
             _table(gates, ["gate", "slice", "check", "value", "threshold", "passed", "action"]) if gates else "",
             "<h2>Per slice</h2>", f"<img alt='per-slice chart' src='data:image/png;base64,{slice_chart(slices, metric)}'>",
             _table(slice_rows, ["slice", "n", metric, "se", "95% CI"])]
    if reg:
        parts += ["<h2>Regression vs previous run</h2>", f"<p>previous run <code>{report.get('previous_run')}</code></p>",
                  f"<img alt='regression chart' src='data:image/png;base64,{regression_chart(reg)}'>",
                  _table(reg_rows, ["slice", "n", "diff", "95% CI"]),
                  f"<h3>Flipped pass -> fail ({len(report['flips']['pass_to_fail'])})</h3>",
                  _table([{"id": i} for i in report["flips"]["pass_to_fail"][:200]], ["id"]),
                  f"<h3>Flipped fail -> pass ({len(report['flips']['fail_to_pass'])})</h3>",
                  _table([{"id": i} for i in report["flips"]["fail_to_pass"][:200]], ["id"])]
    cont = report.get("contamination")
    if cont:
        parts += [f"<h2>Contamination ({cont['contaminated']} of {cont['checked']} items)</h2>",
                  _table(cont["items"][:200], ["id", "status", "matched_docs", "spans"])]
    if report.get("failures"):
        parts += ["<h2>Failures traced to the training data</h2>",
                  _table(report["failures"][:200], ["id", "target", "prediction", "coverage", "support", "nearest", "suggestion"])]
    issues = report.get("prediction_issues", {})
    parts += ["<h2>Prediction file</h2>",
              (f"<p>unknown ids: {len(issues.get('unknown_ids', []))}; missing ids (scored as failures): "
              f"{len(issues.get('missing_ids', []))}</p>"), "</body></html>"]
    html_path = out / "report.html"
    html_path.write_text("\n".join(parts), encoding="utf-8")
    md = [f"# Hard-set report: {report['eval_set']}", "",
          f"- run `{report['run_id']}`, model **{report['model']}**, eval-set hash `{report['eval_set_hash']}`",
          (f"- {metric}: **{slices['all']['metric']:.4f}** [{slices['all']['ci'][0]:.4f}, {slices['all']['ci'][1]:.4f}]"
          f" (n={slices['all']['n']})"),
          f"- gates: {'FAILED: ' + ', '.join(g['gate'] + ' (' + g['slice'] + ')' for g in failed) if failed else 'passed'}",
          "", f"| slice | n | {metric} | 95% CI |", "|---|---|---|---|"]
    md += [f"| {s} | {v['n']} | {v['metric']:.4f} | [{v['ci'][0]:.4f}, {v['ci'][1]:.4f}] |" for s, v in slices.items()]
    if reg:
        md += ["", (f"Flips vs previous run: {len(report['flips']['pass_to_fail'])} pass->fail, "
                   f"{len(report['flips']['fail_to_pass'])} fail->pass")]
    if cont:
        md += ["", f"Contaminated items: {cont['contaminated']} of {cont['checked']}"]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return {"html": str(html_path), "markdown": str(md_path), "json": str(json_path)}

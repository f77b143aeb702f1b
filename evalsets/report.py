"""The hard-set report: one self-contained HTML file (plots embedded), a Markdown summary, JSON."""

from __future__ import annotations

import base64
import html
import io
import json

import jinja2
import matplotlib

from evalsets.fonts import chart_fonts

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def slice_chart(slices: dict[str, dict], metric: str) -> str:
    chart_fonts()
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
    chart_fonts()
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


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and v and all(isinstance(x, float) for x in v):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return "" if v is None else str(v)


# Every value reaches the page through Jinja2 with autoescape on: slice names, targets, gate
# names, ids and predictions come from user files and are data, never markup.
_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["fmt"] = _fmt
_ENV.filters["as_id"] = lambda i: {"id": i}
_HTML = _ENV.from_string("""<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Taomi eval: {{ r.eval_set }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.bad{color:#b00;font-weight:bold}.ok{color:#070}img{max-width:100%}</style>
</head><body>
{% macro table(rows, cols) %}<table><thead><tr>{% for c in cols %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr>{% for c in cols %}<td>{{ row.get(c) | fmt }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endmacro %}
<h1>Hard-set report: {{ r.eval_set }}</h1>
<p>run <code>{{ r.run_id }}</code> · model <b>{{ r.model }}</b> · eval-set hash <code>{{ r.eval_set_hash }}</code> · git {{ r.git_sha }} · {{ r.created_at }}</p>
<p>{{ r.metric }}: <b>{{ "%.4f" | format(all.metric) }}</b> [{{ "%.4f" | format(all.ci[0]) }}, {{ "%.4f" | format(all.ci[1]) }}] over {{ all.n }} items
{% if clean %}; on the clean (uncontaminated) subset: <b>{{ "%.4f" | format(clean.metric) }}</b>{% endif %}</p>
<h2>Gates</h2>
<p class="{{ 'bad' if failed else 'ok' }}">{% if failed %}{{ failed | length }} gate(s) failed: {% for g in failed %}{{ g.gate }} on {{ g.slice }} -&gt; {{ g.recommendation }}{% if not loop.last %}; {% endif %}{% endfor %}{% elif gates %}all gates passed{% else %}no gates configured{% endif %}</p>
{% if gates %}{{ table(gates, ["gate", "slice", "check", "status", "value", "threshold", "n", "min_n", "p_value", "ci", "action", "recommendation"]) }}{% endif %}
<h2>Per slice</h2>
<img alt="per-slice chart" src="data:image/png;base64,{{ slice_png }}">
{{ table(slice_rows, ["slice", "n", r.metric, "se", "95% CI"]) }}
{% if reg %}
<h2>Regression vs previous run</h2>
<p>previous run <code>{{ r.previous_run }}</code></p>
<img alt="regression chart" src="data:image/png;base64,{{ reg_png }}">
{{ table(reg_rows, ["slice", "n", "diff", "95% CI", "p-value", "test"]) }}
<h3>Flipped pass -&gt; fail ({{ r.flips.pass_to_fail | length }})</h3>
{{ table(r.flips.pass_to_fail[:200] | map("as_id") | list, ["id"]) }}
<h3>Flipped fail -&gt; pass ({{ r.flips.fail_to_pass | length }})</h3>
{{ table(r.flips.fail_to_pass[:200] | map("as_id") | list, ["id"]) }}
{% endif %}
{% if cont %}
<h2>Contamination ({{ cont.contaminated }} of {{ cont.checked }} checkable items)</h2>
<p>{{ cont.method }}.{% if cont.get("unchecked") %} {{ cont.unchecked }} of {{ cont.total }} items could not be checked ({{ cont.too_short }} shorter than the n-gram (or their script's run), {{ cont.low_information }} with no informative n-gram); they are not in the clean slice.{% endif %}</p>
{{ table(cont["items"][:200], ["id", "status", "matched_docs", "spans"]) }}
{% endif %}
{% if r.failures %}
<h2>Failures traced to the training data</h2>
{{ table(r.failures[:200], ["id", "target", "prediction", "coverage", "support", "nearest", "suggestion"]) }}
{% endif %}
<h2>Prediction file</h2>
<p>unknown ids: {{ issues.get("unknown_ids", []) | length }}; missing ids (scored as failures): {{ issues.get("missing_ids", []) | length }}</p>
</body></html>
""")

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|~"})


def md_escape(value) -> str:
    """Markdown-safe text: HTML entities for <, >, &, quotes; backslashes before Markdown syntax;
    one line (a newline would end a table row)."""
    text = html.escape(_fmt(value), quote=False).translate(_MD_SPECIAL)
    return " ".join(text.split())


def render_report(report: dict) -> dict[str, str]:
    """report.html (self-contained, plots embedded), report.md and report.json, as text."""
    metric = report["metric"]
    slices = report["slices"]
    reg = report.get("regression") or {}
    gates = report.get("gates") or []
    page = _HTML.render(
        r=report, all=slices["all"], clean=slices.get("clean"), gates=gates,
        failed=[g for g in gates if not g["passed"]], slice_png=slice_chart(slices, metric),
        slice_rows=[{"slice": s, "n": v["n"], metric: v["metric"], "se": v["se"], "95% CI": v["ci"]}
                    for s, v in slices.items()],
        reg=reg, reg_png=regression_chart(reg) if reg else "",
        reg_rows=[{"slice": s, "n": v["n"], "diff": v["diff"], "95% CI": v["ci"], "p-value": v.get("p_value"),
                   "test": v.get("test")} for s, v in reg.items()],
        cont=report.get("contamination"), issues=report.get("prediction_issues", {}))
    e = md_escape
    a = slices["all"]
    failed = [g for g in gates if not g["passed"]]
    md = [f"# Hard-set report: {e(report['eval_set'])}", "",
          f"- run `{e(report['run_id'])}`, model **{e(report['model'])}**, eval-set hash `{e(report['eval_set_hash'])}`",
          f"- {e(metric)}: **{a['metric']:.4f}** [{a['ci'][0]:.4f}, {a['ci'][1]:.4f}] (n={a['n']})",
          "- gates: " + ("FAILED: " + ", ".join(f"{e(g['gate'])} ({e(g['slice'])})" for g in failed) if failed
                         else "passed"),
          "", f"| slice | n | {e(metric)} | 95% CI |", "|---|---|---|---|"]
    md += [f"| {e(s)} | {v['n']} | {v['metric']:.4f} | [{v['ci'][0]:.4f}, {v['ci'][1]:.4f}] |" for s, v in slices.items()]
    undecided = [g for g in gates if g.get("status") in ("not_enough_items", "not_significant")]
    if undecided:
        md += ["", "Gates without a decision:"] + [f"- {e(g['gate'])} on {e(g['slice'])}: {e(g['recommendation'])}"
                                                   for g in undecided]
    if reg:
        md += ["", (f"Flips vs previous run: {len(report['flips']['pass_to_fail'])} pass->fail, "
                   f"{len(report['flips']['fail_to_pass'])} fail->pass")]
    cont = report.get("contamination")
    if cont:
        md += ["", f"Contaminated items: {cont['contaminated']} of {cont['checked']} checkable"
               + (f" ({cont['unchecked']} of {cont.get('total')} items could not be checked)" if cont.get("unchecked")
                  else "")]
    return {"report.html": page, "report.md": "\n".join(md) + "\n",
            "report.json": json.dumps(report, indent=1, default=str)}


REPORT_FILES = ("report.html", "report.md", "report.json")

"""`taomi stats CORPUS --plot FILE`: a PNG of document lengths in tokens, one curve per source.

The histogram is counted in DuckDB (quarter-octave bins; warehouse.corpora.length_histogram), so a
corpus of any size costs a few hundred rows here. Drawn with the report's fonts (evalsets.fonts),
so a Chinese or Thai source name is not a row of empty boxes. Written only over a file Taomi wrote
(`--force` for a user's file)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from evalsets.fonts import chart_fonts
from warehouse.corpora import length_histogram, meta_fields
from warehouse.outputs import check_file, write_file
from warehouse.token_store import current_tokenizer

TOP = 8  # sources drawn by name; the rest are one '(other)' curve


def length_plot(con, corpus: str, path: str | Path, by: str | None = None, force: bool = False) -> dict:
    """Write the plot; return what it shows (unit, field, per value: documents and median length)."""
    check_file(path, force=force, what="plot file")
    field = by or ("source" if "source" in meta_fields(con, corpus) else None)
    tokenizer = current_tokenizer(con, corpus)
    hist = length_histogram(con, corpus, field, tokenizer, TOP)
    unit = f"tokens ({tokenizer})" if tokenizer else "characters (no token counts: run `taomi tokens`)"
    png = _render(hist, unit, f"document lengths of '{corpus}'" + (f" by {field}" if field else ""))
    written = write_file(path, lambda p: p.write_bytes(png), force=force, what="plot file")
    values = []
    for value, g in hist.groupby("value", sort=False):
        n = int(g["documents"].sum())
        half = g["bin"].to_numpy()[np.searchsorted(np.cumsum(g["documents"].to_numpy()), (n + 1) / 2)]
        values.append({"value": value, "documents": n, "median_length_bin": [round(2 ** (half / 4)),
                                                                             round(2 ** ((half + 1) / 4))]})
    return {"plot": str(written), "unit": unit, "field": field, "values": values}


def _render(hist, unit: str, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    chart_fonts()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    if len(hist):
        lo, hi = int(hist["bin"].min()), int(hist["bin"].max()) + 1
        edges = 2 ** (np.arange(lo, hi + 1) / 4)
        for value, g in hist.groupby("value", sort=False):
            counts = np.zeros(hi - lo)
            counts[g["bin"].to_numpy() - lo] = g["documents"].to_numpy()
            ax.stairs(counts, edges, label=f"{value} ({int(counts.sum()):,})", lw=1.6)
        ax.set_xscale("log")
        ax.legend(fontsize=8, title="value (documents)")
    else:
        ax.text(0.5, 0.5, "no documents with a length", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel=f"document length, {unit}", ylabel="documents per quarter octave", title=title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()

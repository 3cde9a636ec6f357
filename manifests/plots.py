"""PNG histograms for the dataset card: ops, strengths and QA values, per subset.

Counts come from the manifests through DuckDB (binned in SQL, so memory does not grow with
the number of pairs); figures are drawn with matplotlib's Agg backend at a fixed size and
DPI with no "Software" metadata, so the same manifests give the same PNG bytes with the
same matplotlib.
"""

from __future__ import annotations

import io
from typing import Any

from manifests.stats import DISTRIBUTION_COLUMNS
from manifests.storage import Store

QA_BINS = 40
_DPI = 100
_COLORS = {"simulated": "#1f77b4", "professional": "#d62728"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


def ops_plot(summary: dict[str, Any]) -> bytes:
    """Horizontal bars: pairs per op, one bar per subset holding it (``summary`` from ``stats``)."""
    plt = _pyplot()
    subsets = summary["subsets"]
    names = sorted({op for s in subsets.values() for op in s["ops"]})
    fig, ax = plt.subplots(figsize=(7, 0.28 * max(len(names), 4) + 1.2))
    height = 0.8 / max(len(subsets), 1)
    for k, (subset, s) in enumerate(subsets.items()):
        ys = [i + k * height for i in range(len(names))]
        ax.barh(ys, [s["ops"].get(n, {}).get("count", 0) for n in names], height=height, label=subset,
                color=_COLORS.get(subset))  # fmt: skip
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("pairs with the op in their chain")
    ax.set_title("Ops")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def strengths_plot(con: Any) -> bytes:
    """Histogram of applied strengths (bins of 10 over [-100, 100]) per subset, from pair_ops."""
    plt = _pyplot()
    rows = con.execute(
        "SELECT CAST(subset AS VARCHAR), least(floor((applied_strength + 100) / 10), 19), count(*) "
        "FROM pair_ops GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    fig, ax = plt.subplots(figsize=(7, 3))
    for subset in sorted({r[0] for r in rows}):
        counts = [0] * 20
        for s, b, n in rows:
            if s == subset:
                counts[int(b)] = int(n)
        ax.stairs(counts, [-100 + 10 * i for i in range(21)], label=subset, color=_COLORS.get(subset), linewidth=1.5)
    ax.set_xlabel("applied strength")
    ax.set_ylabel("ops")
    ax.set_title("Strengths")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def qa_plot(con: Any, summary: dict[str, Any]) -> bytes | None:
    """Histograms of every distribution column with values, between its p1 and p99 (values
    outside fall in the end bins), per subset; None when no column has a value."""
    plt = _pyplot()
    columns = [c for c in DISTRIBUTION_COLUMNS if summary["qa"].get(c, {}).get("count")]
    if not columns:
        return None
    ncols = 3
    nrows = -(-len(columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(9, 2.4 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns):
        d = summary["qa"][column]
        lo, hi = d["p1"], d["p99"]
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        width = (hi - lo) / QA_BINS
        rows = con.execute(
            f"SELECT CAST(subset AS VARCHAR), least(greatest(floor(({column} - ?) / ?), 0), {QA_BINS - 1}), count(*) "
            f"FROM pairs WHERE {column} IS NOT NULL AND NOT isnan({column}) GROUP BY 1, 2 ORDER BY 1, 2",
            [lo, width],
        ).fetchall()
        for subset in sorted({r[0] for r in rows}):
            counts = [0] * QA_BINS
            for s, b, n in rows:
                if s == subset:
                    counts[int(b)] = int(n)
            ax.stairs(counts, [lo + width * i for i in range(QA_BINS + 1)], label=subset, color=_COLORS.get(subset))
        ax.set_title(column, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("QA and scale columns (p1..p99)")
    fig.tight_layout()
    return _png(fig)


def write_plots(store: Store, con: Any, summary: dict[str, Any], folder: str = "plots") -> list[str]:
    """Commit ``<folder>/ops.png``, ``strengths.png`` and ``qa.png`` (when there are values);
    returns their paths relative to the root."""
    written = []
    for name, data in (("ops", ops_plot(summary)), ("strengths", strengths_plot(con)), ("qa", qa_plot(con, summary))):
        if data is not None:
            store.write_bytes(f"{folder}/{name}.png", data)
            written.append(f"{folder}/{name}.png")
    return written

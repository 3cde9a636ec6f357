"""``mirrorset stats ROOT``: dataset statistics from the Parquet manifests alone (no image is read).

The tables are scanned by DuckDB through pyarrow datasets over the root's filesystem
(local or object store), one thread so every figure is reproducible; only the columns a
figure needs are read. The result is one JSON-able dict:

- ``pairs``, ``groups``, ``photos``; ``sources`` (status -> count); ``rejects``
  (stage -> reason -> count, every subset);
- ``image_formats``, ``op_groups``, ``strength_buckets``, ``qa`` and ``max_disp_px_by_op``
  over all subsets, and the same per subset under ``subsets[<name>]`` with ``shards``,
  ``splits``, ``ops`` (name -> group, count, clamped, strength buckets), ``ops_per_pair``,
  ``views_per_group``, ``rejects`` and ``photos_per_window``.

Strength buckets are signed, 20 wide by magnitude, of the *applied* strength: ``"0"``,
``"+1..+20"`` ... ``"+81..+100"``, ``"-1..-20"`` ... ``"-81..-100"``. A distribution is
``{"count", "nulls", "min", "p1", "p5", "p25", "p50", "p75", "p95", "p99", "max", "mean"}``
over the non-null, non-NaN values (percentiles interpolate linearly, as numpy's default);
values are rounded to 6 significant digits; all null when there is no value.
``max_disp_px_by_op`` counts a pair under every op of its chain. ``photos_per_window``
is the number of distinct source photos in each block of ``WINDOW`` consecutive samples in
shard order (shards by index, samples in tar order): ``{"window", "windows", "min",
"median", "max"}``; a subset smaller than one window is one shorter block.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow.dataset as pads

from manifests.schema import PAIR_OPS_DIR, PAIRS_DIR, QA_FIELDS, REJECTS_DIR, SOURCES_DIR, SUBSETS
from manifests.storage import Store

BUCKET_WIDTH = 20
WINDOW = 10_000
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
#: Numeric pair columns with a distribution: every QA column, then the scale columns.
DISTRIBUTION_COLUMNS = tuple(f.name for f in QA_FIELDS) + ("face_iod_px", "max_disp_px")

_BUCKET_SQL = "CASE WHEN applied_strength = 0 THEN 0 ELSE sign(applied_strength) * ceil(abs(applied_strength) / {w}) END"


def bucket_label(bucket: int) -> str:
    """``0 -> "0"``, ``3 -> "+41..+60"``, ``-1 -> "-1..-20"``."""
    if bucket == 0:
        return "0"
    sign = "+" if bucket > 0 else "-"
    hi = abs(bucket) * BUCKET_WIDTH
    return f"{sign}{hi - BUCKET_WIDTH + 1}..{sign}{hi}"


def open_tables(store: Store) -> tuple[Any, dict[str, bool]]:
    """A one-thread DuckDB connection with views ``pairs``, ``pair_ops``, ``rejects`` and
    ``sources`` over the root's parts, and which of them have any part."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 1")
    tables = {
        "pairs": _parts(store, PAIRS_DIR, nested=True),
        "pair_ops": _parts(store, PAIR_OPS_DIR, nested=True),
        "rejects": _parts(store, REJECTS_DIR),
        "sources": _parts(store, SOURCES_DIR),
    }
    for name, files in tables.items():
        if files:
            con.register(name, pads.dataset(files, filesystem=store.fs, format="parquet"))
    return con, {name: bool(files) for name, files in tables.items()}


def stats(root: str | Store, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Statistics of the dataset at ``root`` (module docstring)."""
    store = root if isinstance(root, Store) else Store(root, **(storage_options or {}))
    con, has = open_tables(store)
    subsets = _rows(con, "SELECT DISTINCT CAST(subset AS VARCHAR) FROM pairs") if has["pairs"] else []
    subsets = [s for s in SUBSETS if (s,) in subsets]
    result: dict[str, Any] = {
        **_totals(con, has["pairs"], None),
        "sources": _counts(con, "SELECT status, count(*) FROM sources GROUP BY 1") if has["sources"] else {},
        "rejects": _rejects(con, None) if has["rejects"] else {},
        "image_formats": _counts(con, "SELECT image_format, count(*) FROM pairs GROUP BY 1") if has["pairs"] else {},
        "op_groups": _op_groups(con, None) if has["pair_ops"] else {},
        "strength_buckets": _buckets(con, None, None) if has["pair_ops"] else {},
        "qa": _distributions(con, None) if has["pairs"] else {},
        "max_disp_px_by_op": _disp_by_op(con, None) if has["pairs"] else {},
        "subsets": {s: _subset(con, store, s, has) for s in subsets},
    }
    con.close()
    return result


def _parts(store: Store, folder: str, nested: bool = False) -> list[str]:
    """Filesystem paths of a table's parts (``subset=`` partitions when ``nested``)."""
    rels = []
    if nested:
        for subset in SUBSETS:
            rels += store.list(f"{folder}/subset={subset}", ".parquet")
    else:
        rels = store.list(folder, ".parquet")
    return [store.full(rel) for rel in rels]


def _rows(con: Any, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def _where(subset: str | None, alias: str = "") -> tuple[str, list[Any]]:
    if subset is None:
        return "", []
    return f" WHERE CAST({alias}subset AS VARCHAR) = ?", [subset]


def _counts(con: Any, sql: str, params: Iterable[Any] = ()) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(_rows(con, sql, params), key=lambda r: str(r[0]))}


def _totals(con: Any, has_pairs: bool, subset: str | None) -> dict[str, int]:
    if not has_pairs:
        return {"pairs": 0, "groups": 0, "photos": 0}
    where, params = _where(subset)
    pairs, groups, photos = _rows(
        con, f"SELECT count(*), count(DISTINCT group_id), count(DISTINCT source_id) FROM pairs{where}", params
    )[0]
    return {"pairs": int(pairs), "groups": int(groups), "photos": int(photos)}


def _subset(con: Any, store: Store, subset: str, has: dict[str, bool]) -> dict[str, Any]:
    where, params = _where(subset)
    return {
        **_totals(con, True, subset),
        "shards": int(_rows(con, f"SELECT count(DISTINCT shard) FROM pairs{where}", params)[0][0]),
        "splits": _counts(con, f"SELECT split, count(*) FROM pairs{where} GROUP BY 1", params),
        "image_formats": _counts(con, f"SELECT image_format, count(*) FROM pairs{where} GROUP BY 1", params),
        "ops_per_pair": _counts(con, f"SELECT len(ops), count(*) FROM pairs{where} GROUP BY 1", params),
        "views_per_group": _counts(
            con, f"SELECT n, count(*) FROM (SELECT count(*) AS n FROM pairs{where} GROUP BY group_id) GROUP BY 1", params
        ),
        "op_groups": _op_groups(con, subset) if has["pair_ops"] else {},
        "ops": _ops(con, subset) if has["pair_ops"] else {},
        "strength_buckets": _buckets(con, subset, None) if has["pair_ops"] else {},
        "rejects": _rejects(con, subset) if has["rejects"] else {},
        "qa": _distributions(con, subset),
        "max_disp_px_by_op": _disp_by_op(con, subset),
        "photos_per_window": photos_per_window(store, subset),
    }


def _op_groups(con: Any, subset: str | None) -> dict[str, int]:
    where, params = _where(subset)
    return _counts(con, f'SELECT "group", count(*) FROM pair_ops{where} GROUP BY 1', params)


def _buckets(con: Any, subset: str | None, name: str | None) -> dict[str, int]:
    where, params = _where(subset)
    if name is not None:
        where += (" AND" if where else " WHERE") + " name = ?"
        params.append(name)
    bucket = _BUCKET_SQL.format(w=float(BUCKET_WIDTH))
    rows = _rows(con, f"SELECT {bucket} AS b, count(*) FROM pair_ops{where} GROUP BY 1 ORDER BY 1", params)
    return {bucket_label(int(b)): int(n) for b, n in rows}


def _ops(con: Any, subset: str) -> dict[str, Any]:
    where, params = _where(subset)
    rows = _rows(
        con, f'SELECT name, any_value("group"), count(*), sum(CAST(clamped AS INTEGER)) FROM pair_ops{where} GROUP BY 1',
        params,
    )  # fmt: skip
    return {
        name: {"group": group, "count": int(n), "clamped": int(clamped), "strength_buckets": _buckets(con, subset, name)}
        for name, group, n, clamped in sorted(rows)
    }


def _rejects(con: Any, subset: str | None) -> dict[str, dict[str, int]]:
    where, params = _where(subset)
    nested: dict[str, dict[str, int]] = {}
    for stage, reason, n in sorted(_rows(con, f"SELECT stage, reason, count(*) FROM rejects{where} GROUP BY 1, 2", params)):
        nested.setdefault(stage, {})[reason] = int(n)
    return nested


def _distribution_sql(column: str) -> str:
    valid = f"{column} IS NOT NULL AND NOT isnan({column})"
    quantiles = ", ".join(str(p / 100) for p in PERCENTILES)
    return (
        f"count(*) FILTER (WHERE {valid}), count(*) FILTER (WHERE NOT ({valid}) OR {column} IS NULL), "
        f"min({column}) FILTER (WHERE {valid}), quantile_cont({column}, [{quantiles}]) FILTER (WHERE {valid}), "
        f"max({column}) FILTER (WHERE {valid}), avg({column}) FILTER (WHERE {valid})"
    )


def _distribution(values: tuple[Any, ...]) -> dict[str, Any]:
    count, nulls, low, quantiles, high, mean = values
    dist: dict[str, Any] = {"count": int(count), "nulls": int(nulls), "min": _round(low)}
    dist.update({f"p{p}": _round(q) for p, q in zip(PERCENTILES, quantiles or [None] * len(PERCENTILES))})
    dist.update({"max": _round(high), "mean": _round(mean)})
    return dist


def _distributions(con: Any, subset: str | None) -> dict[str, dict[str, Any]]:
    where, params = _where(subset)
    select = ", ".join(_distribution_sql(c) for c in DISTRIBUTION_COLUMNS)
    row = _rows(con, f"SELECT {select} FROM pairs{where}", params)[0]
    return {c: _distribution(row[6 * i : 6 * i + 6]) for i, c in enumerate(DISTRIBUTION_COLUMNS)}


def _disp_by_op(con: Any, subset: str | None) -> dict[str, dict[str, Any]]:
    where, params = _where(subset, "p.")
    rows = _rows(
        con,
        f"SELECT op.name, {_distribution_sql('max_disp_px')} FROM pairs p, unnest(p.ops) AS t(op){where} GROUP BY 1",
        params,
    )
    return {name: _distribution(tuple(values)) for name, *values in sorted(rows)}


def photos_per_window(store: Store, subset: str, window: int = WINDOW) -> dict[str, Any]:
    """Distinct photos per block of ``window`` consecutive samples of ``subset`` in shard order."""
    counts: list[int] = []
    block: list[str] = []
    for rel in store.list(f"{PAIRS_DIR}/subset={subset}", ".parquet"):
        for source_id in store.read_table(rel, columns=["source_id"]).column(0).to_pylist():
            block.append(source_id)
            if len(block) == window:
                counts.append(len(set(block)))
                block = []
    size = window
    if not counts and block:
        counts, size = [len(set(block))], len(block)
    if not counts:
        return {"window": window, "windows": 0, "min": None, "median": None, "max": None}
    return {"window": size, "windows": len(counts), "min": min(counts), "median": _round(float(np.median(counts))),
            "max": max(counts)}  # fmt: skip


def _round(value: Any) -> float | None:
    if value is None:
        return None
    return float(f"{float(value):.6g}")


def format_stats(s: dict[str, Any]) -> str:
    """A readable summary of :func:`stats`' result (the JSON holds everything)."""
    lines = [f"pairs {s['pairs']}, edits {s['groups']}, photos {s['photos']}"]
    lines.append("sources: " + ", ".join(f"{k} {v}" for k, v in s["sources"].items()))
    for name, sub in s["subsets"].items():
        window = sub["photos_per_window"]
        lines.append(
            f"{name}: {sub['pairs']} pairs, {sub['groups']} edits, {sub['photos']} photos, {sub['shards']} shard(s); "
            f"splits {sub['splits']}; distinct photos per {window['window']} samples: min {window['min']}, "
            f"median {window['median']}"
        )
        labels = sorted({b for op in sub["ops"].values() for b in op["strength_buckets"]}, key=_bucket_order)
        lines.append(f"  {'op':<20}{'group':<12}{'count':>7}{'clamped':>8}  " + " ".join(f"{b:>10}" for b in labels))
        for op, c in sub["ops"].items():
            cells = " ".join(f"{c['strength_buckets'].get(b, 0):>10}" for b in labels)
            lines.append(f"  {op:<20}{c['group']:<12}{c['count']:>7}{c['clamped']:>8}  {cells}")
    lines.append("rejects:")
    for stage, reasons in s["rejects"].items():
        for reason, n in reasons.items():
            lines.append(f"  {stage:<12} {reason:<28} {n:>8}")
    lines.append(f"{'column':<18}{'count':>8}" + "".join(f"{k:>10}" for k in ("p1", "p5", "p50", "p95", "p99", "mean")))
    for column, d in s["qa"].items():
        cells = "".join(f"{_fmt(d[k]):>10}" for k in ("p1", "p5", "p50", "p95", "p99", "mean"))
        lines.append(f"{column:<18}{d['count']:>8}{cells}")
    return "\n".join(lines)


def _bucket_order(label: str) -> float:
    if label == "0":
        return 0.0
    low = int(label.split("..")[0])
    return float(low)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"

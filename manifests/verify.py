"""``mirrorset verify ROOT``: check a dataset root end to end and write a report.

The driver lists the layout (markers, tars, parts, plan, index files; cheap listings and
footers), reports what is missing or stray, then runs one :func:`manifests.shardcheck.check_shard`
task per selected shard on the project's backend (in-process for one worker, Ray actors
for more), so shards are checked in parallel and each tar is read once. The driver never
holds pair ids: only per-shard results (problems, one record, a few counts).

Modes: ``full`` (every shard, every byte hashed), ``quick`` (sizes, markers and Parquet
footers only; no tar byte read), ``sample`` (full checks of N shards chosen
deterministically by a hash of their names). ``shards`` limits any mode to named shards.

The report is a contract (the training gate reads it)::

    {"ok": bool, "mode": "full" | "quick" | "sample",
     "problems": [{"code", "path", "detail"}, ...],           # path relative to ROOT
     "shards": [{"subset", "url", "sha256", "nsamples", "filesize",
                 "mtime_ns" (local roots) | "etag" (object stores)}, ...],
     "counts": {...}}

The report holds no timing, so verifying unchanged shards writes the same bytes (DVC's
``train`` stage depends on it and must not rerun for nothing); the CLI prints the time.

``url`` is relative to ROOT. ``sha256`` and ``nsamples`` were measured from the tar in
full and sample modes; quick mode copies them from the marker. It is written to
``ROOT/verify.json`` unless another path is given (a read-only dataset can be verified).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.detections import DETECTIONS_SCHEMA
from manifests.index import INDEX_KIND, read_shard_index
from manifests.parquet import count_rows, read_part
from manifests.schema import (
    CONFIG_FILE,
    DATASET_FILE,
    DETECTIONS_DIR,
    MARKERS_DIR,
    PAIR_OPS_DIR,
    PAIRS_DIR,
    PLAN_DIR,
    PLAN_SCHEMA,
    REJECTS_DIR,
    REJECTS_SCHEMA,
    SOURCES_DIR,
    SOURCES_SCHEMA,
    SUBSETS,
    VERIFY_FILE,
    check_subset,
    marker_path,
    parse_shard_name,
    shard_index_path,
    shard_name,
)
from manifests.shardcheck import Problem, ShardCheck, ShardResult, check_shard, zero_counts
from manifests.storage import Store

Mode = Literal["full", "quick", "sample"]

_TAR_RE = re.compile(r"^(?P<subset>[a-z]+)-(?P<index>\d{6})\.tar$")
_PART_RE = re.compile(r"^part-(?P<index>\d{6})\.parquet$")
_PARTIAL_RE = re.compile(r"^\..+\.partial$")


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` checked and found; ``ok`` iff ``problems`` is empty."""

    mode: Mode
    problems: tuple[Problem, ...]
    shards: tuple[dict[str, Any], ...]
    counts: dict[str, Any]
    seconds: float
    #: From the first shard check's start to the last one's end, as the workers report them
    #: (excludes starting the backend and its workers); not part of the JSON report.
    check_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The report contract (module docstring)."""
        return {
            "ok": self.ok,
            "mode": self.mode,
            "problems": [p.to_dict() for p in self.problems],
            "shards": list(self.shards),
            "counts": self.counts,
        }

    def summary(self, max_problems: int = 20) -> str:
        c = self.counts
        head = (
            f"{self.mode}: {c['shards_checked']} of {c['shards_total']} shard(s), {c['samples']} samples, "
            f"{c['bytes_read'] / 1e9:.2f} GB read in {self.seconds:.1f} s: "
            + ("OK" if self.ok else f"{len(self.problems)} problem(s)")
        )
        lines = [head] + [f"  [{p.code}] {p.path}: {p.detail}" for p in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            lines.append(f"  ... {len(self.problems) - max_problems} more in the report")
        return "\n".join(lines)


class VerifyStage:
    """Backend stage: one :class:`ShardCheck` in, one :class:`ShardResult` out."""

    name = "verify"

    def __init__(self, store: Store) -> None:
        from pipeline.stage import Resources

        self.store = store
        self.resources = Resources(cpus=1.0)

    def setup(self) -> None:
        """Nothing to load."""

    def process_batch(self, items: list[ShardCheck]) -> list[ShardResult]:
        return [_checked(self.store, task) for task in items]

    def teardown(self) -> None:
        """Nothing to release."""


def _checked(store: Store, task: ShardCheck) -> ShardResult:
    try:
        return check_shard(store, task)
    except Exception as exc:  # a crash in one shard's check is that shard's problem, not the run's
        where = marker_path(task.subset, task.index)
        problem = Problem("task_failed", where, f"{type(exc).__name__}: {exc}")
        return ShardResult(task.subset, task.index, (problem,), None, zero_counts())


def verify(
    root: str,
    *,
    subsets: Sequence[str] | None = None,
    shards: Sequence[str] | None = None,
    sample: int | None = None,
    quick: bool = False,
    report_path: str | None = None,
    workers: int = 1,
    progress: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> VerifyReport:
    """Verify the dataset at ``root`` (a folder or URI) and write the report.

    ``subsets``: only these (default: every subset the root holds). ``shards``: only these
    shards, as names (``simulated-000003``) or indices (needs one subset). ``sample``: full
    checks of that many shards (not with ``quick``). ``report_path``: where the report goes
    (a path or URI; default ``ROOT/verify.json``). ``workers``: parallel shard checks
    (more than 1 uses Ray through ``pipeline.backends``).
    """
    if sample is not None and (quick or sample < 1):
        raise ValueError("sample must be a positive number of shards, and cannot be combined with quick")
    start = time.perf_counter()
    store = Store(root, **(storage_options or {}))
    if not store.exists(CONFIG_FILE) and not store.list(MARKERS_DIR, ".json"):
        raise FileNotFoundError(f"{store.url} holds no mirrorset dataset (no {CONFIG_FILE}, no markers)")
    chosen = [check_subset(s) for s in subsets] if subsets else [s for s in SUBSETS if _has_subset(store, s)]
    absent = [s for s in chosen if not _has_subset(store, s)]
    if absent:
        raise ValueError(f"{store.url} holds no {' or '.join(absent)} subset")
    problems: list[Problem] = []
    tasks: list[ShardCheck] = []
    for subset in chosen:
        subset_tasks, subset_problems = _inventory(store, subset, quick)
        tasks += subset_tasks
        problems += subset_problems
    total = len(tasks)
    tasks = _select(tasks, shards, sample)
    problems += _stray_markers(store)
    if store.is_local:
        problems += _partial_files(store)
    results = _run(store, tasks, workers, progress)
    for result in results:
        problems += result.problems
    if shards is None and sample is None:
        problems += _check_tables(store)
        problems += _check_dataset_counts(store, chosen, results)
    mode: Mode = "quick" if quick else "sample" if sample is not None else "full"
    counts: dict[str, Any] = {
        "shards_total": total,
        "shards_checked": len(tasks),
        **{key: sum(r.counts[key] for r in results) for key in ("samples", "members", "bytes_read")},
        "problems": dict(sorted(Counter(p.code for p in problems).items())),
    }
    records = tuple(r.record for r in sorted(results, key=lambda r: (r.subset, r.index)) if r.record is not None)
    window = max((r.finished for r in results), default=0.0) - min((r.started for r in results), default=0.0)
    report = VerifyReport(mode, tuple(problems), records, counts, round(time.perf_counter() - start, 3), window)
    write_report(store, report, report_path)
    return report


def write_report(store: Store, report: VerifyReport, report_path: str | None) -> str:
    """Commit the report to ``report_path`` (default ``ROOT/verify.json``); returns where."""
    if report_path is None:
        store.write_json(VERIFY_FILE, report.to_dict())
        return store.uri(VERIFY_FILE)
    folder, _, name = report_path.rstrip("/").rpartition("/")
    Store(folder or ".").write_json(name, report.to_dict())
    return report_path


def _has_subset(store: Store, subset: str) -> bool:
    return bool(
        store.list(f"shards/{subset}") or store.list(f"{PLAN_DIR}/subset={subset}")
        or any(rel.rsplit("/", 1)[-1].startswith(f"{subset}-") for rel in store.list(MARKERS_DIR, ".json"))
    )  # fmt: skip


def _inventory(store: Store, subset: str, quick: bool) -> tuple[list[ShardCheck], list[Problem]]:
    """Tasks for every marked shard of ``subset`` and the problems seen from listings alone."""
    problems: list[Problem] = []
    marked = {index for s, index in _marker_names(store) if s == subset}
    tars = _indices(store.list(f"shards/{subset}"), rf"^{subset}-(?P<index>\d{{6}})\.tar$", "index.json", problems)
    pairs = _indices(store.list(f"{PAIRS_DIR}/subset={subset}"), _PART_RE.pattern, None, problems)
    ops = _indices(store.list(f"{PAIR_OPS_DIR}/subset={subset}"), _PART_RE.pattern, None, problems)
    planned, plan_problems = _plan(store, subset)
    problems += plan_problems
    for index in sorted((tars | pairs | ops) - marked):
        problems.append(Problem("missing_marker", marker_path(subset, index),
                                f"shard {shard_name(subset, index)} has files but no marker"))  # fmt: skip
    for index in sorted(planned - marked - tars - pairs - ops):
        problems.append(Problem("missing_shard", marker_path(subset, index),
                                f"the plan names shard {shard_name(subset, index)}, which was never committed"))  # fmt: skip
    listed, index_problems = _listed(store, subset, marked)
    problems += index_problems
    tasks = [ShardCheck(subset, i, quick, listed.get(f"{shard_name(subset, i)}.tar")) for i in sorted(marked)]
    return tasks, problems


def _indices(rels: list[str], pattern: str, allowed: str | None, problems: list[Problem]) -> set[int]:
    """Shard indices of the files whose names match ``pattern``; other names (but ``allowed``) are strays."""
    found = set()
    for rel in rels:
        base = rel.rsplit("/", 1)[-1]
        match = re.match(pattern, base)
        if match:
            found.add(int(match["index"]))
        elif base != allowed:
            problems.append(Problem("stray_file", rel, "the layout names no such file"))
    return found


def _marker_names(store: Store) -> list[tuple[str, int]]:
    """(subset, index) of every well-named marker."""
    names = []
    for rel in store.list(MARKERS_DIR, ".json"):
        try:
            names.append(parse_shard_name(rel.rsplit("/", 1)[-1].removesuffix(".json")))
        except ValueError:
            continue
    return names


def _stray_markers(store: Store) -> list[Problem]:
    named = {f"{MARKERS_DIR}/{shard_name(s, i)}.json" for s, i in _marker_names(store)}
    return [Problem("stray_file", rel, "the layout names no such file") for rel in store.list(MARKERS_DIR) if rel not in named]


def _plan(store: Store, subset: str) -> tuple[set[int], list[Problem]]:
    """Planned shard indices of ``subset`` and overlapping runs (one edit planned twice).

    Reads only the plan's key columns (one row per run, not per pair)."""
    problems = []
    tables = []
    for rel in store.list(f"{PLAN_DIR}/subset={subset}", ".parquet"):
        try:
            tables.append(read_part(store, rel, PLAN_SCHEMA).select(
                ["shard_index", "source_id", "person_index", "edit_start", "edit_stop"]))  # fmt: skip
        except (ValueError, OSError, pa.ArrowException) as exc:
            problems.append(Problem("bad_table", rel, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
    if not tables:
        return set(), problems
    runs = pa.concat_tables(tables).sort_by([("source_id", "ascending"), ("person_index", "ascending"),
                                             ("edit_start", "ascending")])  # fmt: skip
    planned = set(pc.unique(runs["shard_index"]).to_pylist())
    if runs.num_rows > 1:
        head, tail = runs.slice(0, runs.num_rows - 1), runs.slice(1)
        same = pc.and_(pc.equal(head["source_id"], tail["source_id"]), pc.equal(head["person_index"], tail["person_index"]))
        overlap = pc.and_(same, pc.less(tail["edit_start"], head["edit_stop"])).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(overlap)[:10].tolist():
            problems.append(Problem("plan_mismatch", f"{PLAN_DIR}/subset={subset}",
                                    f"edits of {head['source_id'][i]} person {head['person_index'][i]} are planned in "
                                    f"shards {head['shard_index'][i]} and {tail['shard_index'][i]}"))  # fmt: skip
    return planned, problems


def _listed(store: Store, subset: str, marked: set[int]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Entries of the stored index by url; problems of the index as a whole."""
    rel = shard_index_path(subset)
    try:
        index = read_shard_index(store, subset)
    except ValueError as exc:
        return {}, [Problem("index_mismatch", rel, str(exc))]
    if index is None:
        return {}, [Problem("missing_file", rel, f"{subset} has committed shards but no index")] if marked else []
    problems = []
    head = {k: index.get(k) for k in ("__kind__", "wids_version", "name")}
    if head != {"__kind__": INDEX_KIND, "wids_version": 1, "name": subset}:
        problems.append(Problem("index_mismatch", rel, f"header {head} is not a wids-shard-index-v1 of {subset}"))
    entries = index.get("shardlist")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("url"), str) for e in entries):
        return {}, problems + [Problem("index_mismatch", rel, "shardlist must be a list of entries with a url")]
    urls = [e["url"] for e in entries]
    expected = [f"{shard_name(subset, i)}.tar" for i in sorted(marked)]
    extra, missing = sorted(set(urls) - set(expected)), sorted(set(expected) - set(urls))
    if extra:
        problems.append(Problem("index_mismatch", rel, f"shardlist names {extra}, which have no marker"))
    if missing:
        problems.append(Problem("index_mismatch", rel, f"shardlist misses committed shard(s) {missing}"))
    if not extra and not missing and urls != expected:
        problems.append(Problem("index_mismatch", rel, "shardlist is not in shard order or names a shard twice"))
    return {e["url"]: e for e in entries}, problems


def _select(tasks: list[ShardCheck], shards: Sequence[str] | None, sample: int | None) -> list[ShardCheck]:
    if shards is not None:
        subsets = {t.subset for t in tasks}
        wanted = set()
        for item in shards:
            item = item.strip()
            if item.isdigit():
                if len(subsets) != 1:
                    raise ValueError(f"shard index {item!r} is ambiguous with subsets {sorted(subsets)}: "
                                     "give --subset or shard names")  # fmt: skip
                wanted.add((next(iter(subsets)), int(item)))
            else:
                wanted.add(parse_shard_name(item.removesuffix(".tar")))
        known = {(t.subset, t.index) for t in tasks}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"no committed shard(s) {[shard_name(*s) for s in unknown]}")
        tasks = [t for t in tasks if (t.subset, t.index) in wanted]
    if sample is not None:
        ranked = sorted(tasks, key=lambda t: hashlib.sha256(f"verify-sample:{t.subset}-{t.index}".encode()).digest())
        tasks = sorted(ranked[:sample], key=lambda t: (t.subset, t.index))
    return tasks


def _run(store: Store, tasks: list[ShardCheck], workers: int, progress: bool) -> list[ShardResult]:
    from pipeline.backends import open_backend
    from pipeline.tasks import TasksFailed, run_tasks

    if not tasks:
        return []
    workers = max(1, min(workers, len(tasks)))
    kind = "local" if workers == 1 else "ray"
    with open_backend(kind, num_workers=workers) as backend:
        try:
            return run_tasks(backend, VerifyStage(store), tasks, label=lambda t: shard_name(t.subset, t.index),
                             progress=progress, unit="shard")  # fmt: skip
        except TasksFailed as exc:  # workers died: the run is incomplete, and says so
            return [
                ShardResult(t.subset, t.index, (Problem("task_failed", marker_path(t.subset, t.index),
                            exc.failures.get(shard_name(t.subset, t.index), "not run: another task failed")[-500:]),),
                            None, zero_counts())
                for t in tasks
            ]  # fmt: skip


def _check_tables(store: Store) -> list[Problem]:
    """Schemas of the tables no shard owns (sources, detections, ingest/detect/plan rejects)."""
    problems = []
    shard_reject = re.compile(rf"^(?:{'|'.join(SUBSETS)})-\d{{6}}\.parquet$")
    checks = [(rel, SOURCES_SCHEMA) for rel in store.list(SOURCES_DIR, ".parquet")]
    checks += [(rel, DETECTIONS_SCHEMA) for rel in store.list(DETECTIONS_DIR, ".parquet")]
    checks += [(rel, REJECTS_SCHEMA) for rel in store.list(REJECTS_DIR, ".parquet")
               if not shard_reject.match(rel.rsplit("/", 1)[-1])]  # fmt: skip
    if not store.list(SOURCES_DIR, ".parquet"):
        problems.append(Problem("missing_file", SOURCES_DIR, "the sources table has no part"))
    for rel, schema in checks:
        try:
            count_rows(store, rel, schema)
        except (ValueError, OSError, pa.ArrowException) as exc:
            problems.append(Problem("bad_table", rel, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
    return problems


def _check_dataset_counts(store: Store, subsets: list[str], results: list[ShardResult]) -> list[Problem]:
    """dataset.json's per-subset shard and pair counts against the markers of every shard."""
    try:
        dataset = store.read_json(DATASET_FILE)
    except ValueError as exc:
        return [Problem("bad_marker", DATASET_FILE, f"not valid JSON: {exc}")]
    if dataset is None:
        return [Problem("missing_file", DATASET_FILE, "the build did not finish (dataset.json is written last)")]
    problems = []
    for subset in subsets:
        mine = [r for r in results if r.subset == subset]
        want = {"shards": len(mine), "pairs": sum(r.counts["marker_pairs"] for r in mine)}
        got = (dataset.get("subsets") or {}).get(subset)
        have = {k: got.get(k) for k in want} if isinstance(got, dict) else None
        if (mine or have is not None) and have != want:
            problems.append(Problem("count_mismatch", DATASET_FILE, f"{subset}: records {have}, the markers give {want}"))
    return problems


def _partial_files(store: Store) -> list[Problem]:
    problems = []
    for folder, _dirs, names in os.walk(store.root):
        for name in sorted(names):
            if _PARTIAL_RE.match(name):
                rel = os.path.relpath(os.path.join(folder, name), store.root).replace(os.sep, "/")
                problems.append(Problem("partial_file", rel, "left by an unfinished (or running) writer"))
    return sorted(problems, key=lambda p: p.path)

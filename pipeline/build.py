"""Orchestration: ingest -> detect -> (per subset) plan -> shards -> index -> dataset.json.

Every step commits atomically and is skipped on a rerun when its output is there, so a
build killed at any moment and run again finishes with the same bytes as an uninterrupted
one. The driver holds ids, paths, plans and per-task summaries; pixels stay on workers, and
everything workers produce reaches the driver as task results or as objects under the
dataset root (a local folder or an object-store URI; see ``manifests.storage``).

``config.json`` records, per stage, the config group its outputs were made with
(``MirrorsetConfig.groups``) and the source. A stage whose group differs from the recorded
one is refused with the first difference, unless ``replace`` is given: then that stage's
outputs and everything downstream of them are deleted and rebuilt (for a subset: that subset
only).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from manifests.index import write_shard_index
from manifests.parquet import encode_rows, read_parts
from manifests.schema import (
    DETECTIONS_DIR,
    MARKERS_DIR,
    PAIR_OPS_DIR,
    PAIRS_DIR,
    PLAN_DIR,
    REJECTS_DIR,
    REJECTS_SCHEMA,
    SCHEMA_VERSION,
    SOURCES_DIR,
    SOURCES_SCHEMA,
    WORK_DIR,
    CONFIG_FILE,
    DATASET_FILE,
    check_subset,
    rejects_part_path,
    shard_index_path,
    shard_name,
    sources_part_path,
)
from manifests.lock import OutputLock
from manifests.storage import Store
from pipeline.backends import Backend, open_backend
from pipeline.config import ClusterConfig, MirrorsetConfig, config_from_dataset_dict
from pipeline.detect_stage import DetectStage, committed_ids, plan_chunks
from pipeline.ingest import (
    INGEST_WORK_SCHEMA,
    IngestStage,
    SourceList,
    chunk_paths,
    ingest_part_path,
    list_sources,
    reject_row,
    resolve_duplicates,
)
from pipeline.plan import ShardTask, load_plan, plan_generation, samples_per_shard
from pipeline.recipes import recipe_for
from pipeline.runner import ShardStage, ShardSummary, code_versions
from pipeline.stage import Resources
from pipeline.tasks import run_tasks
from pipeline.versions import differences, stack

Stage = Literal["ingest", "detect", "shards", "all"]
#: Sources rows per committed sources part.
SOURCES_PART_ROWS = 100_000
#: Reject reasons ``retry_rejects`` tries again: failures of the run, not of the photo.
RETRYABLE = ("internal_error", "timeout")


class ConfigMismatch(ValueError):
    """The dataset root holds outputs made with a different config or source."""


class VersionMismatch(ConfigMismatch):
    """The dataset root was built with other library versions or model files."""


@dataclass(frozen=True)
class SubsetReport:
    """Counts of one subset of a finished build."""

    subset: str
    shards: int
    shards_skipped: int
    pairs: int
    planned: int
    rejects: int


@dataclass(frozen=True)
class BuildReport:
    """Counts of a build and where it is."""

    out: str
    sources: int
    accepted: int
    detected: int
    subsets: tuple[SubsetReport, ...] = field(default_factory=tuple)

    @property
    def pairs(self) -> int:
        return sum(s.pairs for s in self.subsets)


def build(
    source: str | None,
    out: str,
    config: MirrorsetConfig,
    *,
    subsets: Sequence[str] = ("simulated",),
    stage: Stage = "all",
    replace: bool = False,
    allow_version_change: bool = False,
    retry_rejects: bool = False,
    progress: bool = True,
) -> BuildReport:
    """Build (or finish, or grow) the dataset of ``source`` into ``out``.

    ``stage`` limits the run to one step (``ingest``, ``detect``, ``shards``), as the DVC
    stages do; later steps read what earlier ones recorded, so only ``ingest`` and ``all``
    need ``source`` (None: the recorded one). A root built with other library versions or
    model files (``pipeline.versions``) is refused unless ``allow_version_change``.
    ``retry_rejects``: photos and shards whose earlier attempt ended in a RETRYABLE reject
    (an unexpected error, a timeout) are tried again (a shard that had one is rebuilt).
    """
    subsets = [check_subset(s) for s in subsets]
    store = Store(out)
    with _lock(store, config.cluster) as lock:
        report = _build(store, lock, source, config, subsets, stage, replace, allow_version_change, retry_rejects, progress)
        store.sweep_partials()  # what attempts killed during this run (and then retried) left behind
        return report


def _build(
    store: Store, lock: OutputLock, source: str | None, config: MirrorsetConfig, subsets: list[str], stage: Stage,
    replace: bool, allow_version_change: bool, retry_rejects: bool, progress: bool,
) -> BuildReport:
    store.sweep_partials()  # only this build writes here now: what a killed attempt left is garbage
    recorded = store.read_json(CONFIG_FILE) or {}
    source = _source(source, recorded, store)
    steps = ("ingest", "detect", "shards") if stage == "all" else (stage,)
    listing = list_sources(source, list_root=config.ingest.list_root) if "ingest" in steps else None
    groups = config.groups()
    current = stack(config.detector.weights)
    changed = differences(recorded.get("stack", current), current)
    if changed and not allow_version_change:
        raise VersionMismatch(
            f"{store.url} was built with another software stack: " + "; ".join(changed[:5])
            + ("; ..." if len(changed) > 5 else "")
            + ". Install the recorded versions (constraints.txt), or pass --allow-version-change to continue "
            "anyway (the dataset then mixes pairs of both stacks; every pair's record names its versions)"
        )
    recorded = _check_groups(store, recorded, source, groups, steps, subsets, replace)
    recorded["stack"] = current
    with _backend(config.cluster) as backend:
        tasks = functools.partial(_run_tasks, backend, config.cluster, lock.check, progress)
        if listing is not None:
            _ingest(tasks, store, listing, config)
            _record(store, recorded, source, groups, ["ingest"])
        accepted, total = _accepted_sources(store)
        if "detect" in steps:
            if retry_rejects:
                _forget_retryable_detections(store)
            _detect(tasks, store, accepted, config)
            _record(store, recorded, source, groups, ["detect"])
        reports = []
        if "shards" in steps:
            for subset in subsets:
                if retry_rejects:
                    _forget_retryable_shards(store, subset)
                reports.append(_build_subset(tasks, store, subset, accepted, config))
                _record(store, recorded, source, groups, [subset])
    detected = len(committed_ids(store)[0])
    report = BuildReport(store.url, total, len(accepted), detected, tuple(reports))
    _write_dataset_json(store, report, store.read_json(CONFIG_FILE) or {})
    return report


def regenerate(
    out: str,
    subset: str,
    shards: Sequence[int] | None = None,
    *,
    cluster: ClusterConfig = ClusterConfig(num_workers=1),
    progress: bool = True,
) -> list[ShardSummary]:
    """Delete and rebuild shards of ``subset`` (all, or the ``shards`` indices) from the plan
    and the recorded config; the result is byte-identical to the original."""
    store = Store(out)
    config = recorded_config(store, subset, cluster)
    with _lock(store, config.cluster) as lock:
        store.sweep_partials()
        summaries = _regenerate(store, lock, config, subset, shards, progress)
        store.sweep_partials()
        return summaries


def _regenerate(
    store: Store, lock: OutputLock, config: MirrorsetConfig, subset: str, shards: Sequence[int] | None, progress: bool
) -> list[ShardSummary]:
    tasks, _, _ = load_plan(store, check_subset(subset))
    if shards is not None:
        known = {t.index for t in tasks}
        unknown = sorted(set(shards) - known)
        if unknown:
            raise ValueError(f"no {subset} shard(s) {unknown} in {store.url}; it has {sorted(known)}")
        tasks = [t for t in tasks if t.index in set(shards)]
    from manifests.schema import marker_path

    for task in tasks:
        store.delete(marker_path(task.subset, task.index))
    with _backend(config.cluster) as backend:
        summaries = _run_shards(functools.partial(_run_tasks, backend, config.cluster, lock.check, progress),
                                store, subset, tasks, config)  # fmt: skip
    write_shard_index(store, subset)
    return summaries


def recorded_config(store: Store, subset: str, cluster: ClusterConfig) -> MirrorsetConfig:
    """The config ``subset`` of ``store`` was built with, run with ``cluster``."""
    recorded = store.read_json(CONFIG_FILE)
    if recorded is None:
        raise FileNotFoundError(f"{store.uri(CONFIG_FILE)} does not exist: {store.url} is not a mirrorset build")
    groups = recorded.get("groups", {})
    if subset not in groups:
        raise ValueError(f"{store.url} holds no {subset} subset (recorded: {sorted(k for k in groups if k in ('simulated', 'professional'))})")
    data: dict[str, Any] = {}
    for name in ("ingest", "detect", subset):
        data.update(groups.get(name, {}))
    return config_from_dataset_dict(data, cluster)


def _source(source: str | None, recorded: dict[str, Any], store: Store) -> str:
    if source is None:
        if "source" not in recorded:
            raise FileNotFoundError(f"{store.url} records no source yet: run the ingest stage with --source first")
        return recorded["source"]
    if source != "sample" and "://" not in source:
        import os

        source = os.path.abspath(source)
    return source


def _check_groups(
    store: Store, recorded: dict[str, Any], source: str, groups: dict[str, Any], steps: Sequence[str],
    subsets: Sequence[str], replace: bool,
) -> dict[str, Any]:
    """Refuse (or, with ``replace``, clear) outputs made with another config; returns the record."""
    import json

    found = recorded.get("groups", {})
    wanted = json.loads(json.dumps(groups))
    checks = ["ingest"] if "ingest" in steps else []
    if recorded.get("source") not in (None, source):
        if not replace:
            raise ConfigMismatch(
                f"{store.url} was built from source {recorded['source']!r}, not {source!r}; "
                "use another --out, or --replace to rebuild everything"
            )
        _clear(store, "ingest", found)
        found = {}
    if "detect" in steps or "shards" in steps:
        checks.append("detect")
    if "shards" in steps:
        checks.extend(subsets)
    for name in checks:
        if name in found and found[name] != wanted[name]:
            if not replace:
                raise ConfigMismatch(
                    f"{store.url} holds {name} outputs made with a different config "
                    f"({_first_difference(found[name], wanted[name])}); use another --out, or --replace "
                    f"to delete and rebuild them"
                )
            _clear(store, name, found)
    return {"schema_version": SCHEMA_VERSION, "source": source, "groups": found, "stack": recorded.get("stack")}


def _clear(store: Store, name: str, found: dict[str, Any]) -> None:
    """Delete the outputs of stage ``name`` and everything downstream of them."""
    subsets = ("simulated", "professional")
    if name in ("ingest", "detect"):
        for folder in (DETECTIONS_DIR, PLAN_DIR, PAIRS_DIR, PAIR_OPS_DIR, MARKERS_DIR, "shards"):
            store.delete_tree(folder)
        for rel in store.list(REJECTS_DIR, ".parquet"):
            if not rel.rsplit("/", 1)[-1].startswith("ingest-"):
                store.delete(rel)
        for key in ("detect", *subsets):
            found.pop(key, None)
        if name == "ingest":
            store.delete_tree(SOURCES_DIR)
            store.delete_tree(f"{WORK_DIR}/ingest")
            store.delete_tree(REJECTS_DIR)
            found.pop("ingest", None)
        return
    store.delete_tree(f"{PLAN_DIR}/subset={name}")
    store.delete_tree(f"{PAIRS_DIR}/subset={name}")
    store.delete_tree(f"{PAIR_OPS_DIR}/subset={name}")
    store.delete_tree(f"shards/{name}")
    for rel in store.list(MARKERS_DIR, ".json"):
        if rel.rsplit("/", 1)[-1].startswith(f"{name}-"):
            store.delete(rel)
    for rel in store.list(REJECTS_DIR, ".parquet"):
        base = rel.rsplit("/", 1)[-1]
        if base.startswith(f"{name}-") or base.startswith(f"plan-{name}-"):
            store.delete(rel)
    found.pop(name, None)


def _record(store: Store, recorded: dict[str, Any], source: str, groups: dict[str, Any], names: list[str]) -> None:
    import json

    for name in names:
        recorded["groups"][name] = json.loads(json.dumps(groups[name]))
    recorded["source"] = source
    store.write_json(CONFIG_FILE, recorded)


def _backend(cluster: ClusterConfig) -> Backend:
    return open_backend(cluster.resolved_backend(), num_workers=cluster.num_workers, address=cluster.address,
                        worker_start_timeout_s=cluster.worker_start_timeout_s)  # fmt: skip


@contextmanager
def _lock(store: Store, cluster: ClusterConfig) -> Iterator[OutputLock]:
    """Hold the root's build lock (one build per root); say so when a dead build's is taken over."""
    with OutputLock(store.url, stale_after_s=cluster.lock_stale_after_s, heartbeat_s=cluster.lock_heartbeat_s,
                    storage_options=store.storage_options) as lock:  # fmt: skip
        if lock.took_over:
            logging.getLogger(__name__).warning("%s: took over the lock: %s", store.url, lock.took_over)
        yield lock


def _run_tasks(backend: Backend, cluster: ClusterConfig, check: Callable[[], None], progress: bool,
               stage: Any, tasks: Sequence[Any], *, label: Callable[[Any], str], unit: str,
               workers: int | None = None) -> list[Any]:  # fmt: skip
    """run_tasks with the cluster's retry and timeout settings and the lock's check."""
    return run_tasks(
        backend, stage, tasks, label=label, unit=unit, workers=workers, progress=progress, check=check,
        max_retries=cluster.max_retries, backoff_s=cluster.retry_backoff_s, backoff_max_s=cluster.retry_backoff_max_s,
        task_timeout_s=cluster.task_timeout_s,
    )  # fmt: skip


def _ingest(tasks: Callable[..., list[Any]], store: Store, listing: SourceList, config: MirrorsetConfig) -> None:
    """Inspect every path not yet inspected, then write the sources table and ingest rejects."""
    paths = list(listing.paths[: config.limit] if config.limit else listing.paths)
    seen: dict[str, dict[str, Any]] = {}
    parts = store.list(f"{WORK_DIR}/ingest", ".parquet")
    for rel in parts:
        for row in store.read_table(rel).to_pylist():
            seen[row["path"]] = row
    first = max((int(rel.rsplit("-", 1)[-1].removesuffix(".parquet")) for rel in parts), default=-1) + 1
    chunks = chunk_paths(paths, set(seen), config.ingest.chunk_size, first, listing.root)
    stage = IngestStage(store, config.ingest.limits, Resources(cpus=config.cluster.num_cpus_per_worker))
    written = tasks(stage, chunks, label=lambda c: f"ingest chunk {c.index}", unit="chunk")
    for item in written:
        for row in store.read_table(item.path).to_pylist():
            seen[row["path"]] = row
    rows = resolve_duplicates(seen[p] for p in paths)
    for old in store.list(SOURCES_DIR, ".parquet"):
        store.delete(old)
    for i, start in enumerate(range(0, max(len(rows), 1), SOURCES_PART_ROWS)):
        store.write_bytes(sources_part_path(i), encode_rows(rows[start : start + SOURCES_PART_ROWS], SOURCES_SCHEMA))
    rejected = [reject_row(r) for r in rows if r["status"] != "accepted"]
    store.write_bytes(rejects_part_path("ingest", 0), encode_rows(rejected, REJECTS_SCHEMA))


def _accepted_sources(store: Store) -> tuple[list[tuple[str, str]], int]:
    """Accepted ``(source_id, path)`` pairs and the number of sources rows."""
    table = read_parts(store, SOURCES_DIR, columns=["source_id", "path", "status"])
    rows = table.to_pylist()
    return [(r["source_id"], r["path"]) for r in rows if r["status"] == "accepted"], len(rows)


def _detect(tasks: Callable[..., list[Any]], store: Store, accepted: list[tuple[str, str]], config: MirrorsetConfig) -> None:
    """Detect every accepted photo no committed part holds (no worker loads a model when none)."""
    located, failed, first = committed_ids(store)
    chunks = plan_chunks(accepted, set(located) | failed, config.cluster.detect_chunk_size, first)
    stage = DetectStage(
        store, config.detector, config.gates, config.ingest.limits, config.cluster.photo_timeout_s,
        Resources(cpus=config.cluster.num_cpus_per_worker),
    )  # fmt: skip
    tasks(stage, chunks, label=lambda c: f"detect chunk {c.index}", unit="chunk", workers=config.cluster.detect_actors or None)


def _forget_retryable_detections(store: Store) -> None:
    """Drop detect reject rows with a RETRYABLE reason, so those photos are detected again."""
    for rel in store.list(REJECTS_DIR, ".parquet"):
        if not rel.rsplit("/", 1)[-1].startswith("detect-"):
            continue
        rows = store.read_table(rel).to_pylist()
        kept = [r for r in rows if r["reason"] not in RETRYABLE]
        if len(kept) != len(rows):
            store.write_bytes(rel, encode_rows(kept, REJECTS_SCHEMA))


def _forget_retryable_shards(store: Store, subset: str) -> None:
    """Unmark the shards of ``subset`` whose rejects hold a RETRYABLE reason, so they are rebuilt."""
    from manifests.markers import read_markers
    from manifests.schema import marker_path

    for index, marker in read_markers(store, subset).items():
        rejects = marker["files"].get("rejects", {}).get("path")
        if rejects and store.exists(rejects):
            reasons = set(store.read_table(rejects, columns=["reason"]).column(0).to_pylist())
            if reasons & set(RETRYABLE):
                store.delete(marker_path(subset, index))


def _build_subset(
    tasks: Callable[..., list[Any]], store: Store, subset: str, accepted: list[tuple[str, str]], config: MirrorsetConfig
) -> SubsetReport:
    recipe = recipe_for(subset, config)
    per_shard = samples_per_shard(config.output.shard_target_bytes, config.output.bytes_per_pixel, recipe.nominal_pixels)
    shard_tasks = plan_generation(
        store, recipe, dict(accepted), samples_per_shard=per_shard, edits_per_run=config.output.edits_per_run
    )
    summaries = _run_shards(tasks, store, subset, shard_tasks, config)
    write_shard_index(store, subset)
    return SubsetReport(
        subset, len(summaries), sum(s.skipped for s in summaries), sum(s.pairs for s in summaries),
        sum(s.planned for s in summaries), sum(s.rejects for s in summaries),
    )  # fmt: skip


def _run_shards(
    tasks: Callable[..., list[Any]], store: Store, subset: str, shard_tasks: list[ShardTask], config: MirrorsetConfig
) -> list[ShardSummary]:
    stage = ShardStage(store, config, subset, Resources(cpus=config.cluster.num_cpus_per_worker))
    return tasks(stage, shard_tasks, label=lambda t: shard_name(t.subset, t.index), unit="shard")


def _write_dataset_json(store: Store, report: BuildReport, recorded: dict[str, Any]) -> None:
    from manifests.markers import read_markers

    subsets = {}
    for subset in ("simulated", "professional"):
        markers = read_markers(store, subset)
        if not markers:
            continue
        subsets[subset] = {
            "shards": len(markers),
            "pairs": sum(m["counts"]["pairs"] for m in markers.values()),
            "planned": sum(m["counts"]["planned"] for m in markers.values()),
            "index": shard_index_path(subset),
        }
    store.write_json(DATASET_FILE, {
        "schema_version": SCHEMA_VERSION,
        "source": recorded.get("source"),
        "groups": recorded.get("groups", {}),
        "versions": code_versions(),
        "stack": recorded.get("stack"),
        "counts": {"sources": report.sources, "accepted": report.accepted, "detected": report.detected},
        "subsets": subsets,
    })  # fmt: skip


def _first_difference(found: Any, wanted: Any, path: str = "") -> str:
    if isinstance(found, dict) and isinstance(wanted, dict):
        for key in sorted(set(found) | set(wanted)):
            if found.get(key) != wanted.get(key):
                return _first_difference(found.get(key), wanted.get(key), f"{path}.{key}" if path else key)
    return f"{path or 'value'}: recorded {found!r}, now {wanted!r}"

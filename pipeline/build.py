"""Orchestration: ingest -> detect -> plan shards -> shards -> rejects -> dataset.json.

Every step commits atomically and is skipped on a rerun when its output is already
there, so a build killed at any moment and run again finishes with the same bytes as
an uninterrupted one. The driver holds ids, paths and per-task summaries only.

Outputs besides the manifests layout (``manifests.schema``): ``OUT/config.json`` (the
dataset-defining config and the source, written first; a rerun with a different one is
refused) and ``OUT/_work/`` (detection parts, per-stage rejects; reused on rerun).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow.parquet as pq

from manifests.markers import write_json_atomic
from manifests.parquet import ParquetPartWriter, write_table
from manifests.schema import (
    REJECTS_SCHEMA,
    SCHEMA_VERSION,
    SOURCES_SCHEMA,
    detections_path,
    rejects_path,
    shard_tar_path,
    sources_path,
)
from pipeline.backends import Backend, open_backend
from pipeline.config import ClusterConfig, MirrorsetConfig, config_from_dataset_dict
from pipeline.detect_stage import (
    DetectChunk,
    DetectStage,
    chunk_is_done,
    iter_verdicts,
    merge_detections,
    plan_chunks,
)
from pipeline.runner import (
    ShardStage,
    ShardSummary,
    ShardTask,
    SourceOutput,
    shard_outputs,
    shard_rejects_path,
)
from pipeline.stage import Resources
from pipeline.tasks import run_tasks


class ConfigMismatch(ValueError):
    """OUT already holds a build made with a different config or source."""


@dataclass(frozen=True)
class BuildReport:
    """Counts of a finished build and where it is."""

    out: str
    sources: int
    accepted: int
    usable: int
    shards: int
    shards_skipped: int
    pairs: int
    rejects: int


def config_path(out: str | Path) -> Path:
    return Path(out) / "config.json"


def dataset_json_path(out: str | Path) -> Path:
    return Path(out) / "dataset.json"


def ingest_rejects_path(out: str | Path) -> Path:
    return Path(out) / "_work" / "rejects" / "ingest.parquet"


def versions() -> dict[str, str]:
    """Versions that can change the bytes of a build."""
    import pyarrow

    from pipeline.synthesis import code_versions

    return {**code_versions(), "pyarrow": pyarrow.__version__, "python": platform.python_version()}


def record_config(out: str | Path, config: MirrorsetConfig, source: str) -> None:
    """Write ``OUT/config.json`` or check it equals this build's; ConfigMismatch if not."""
    wanted = {"config": config.dataset_dict(), "source": source}
    path = config_path(out)
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != json.loads(json.dumps(wanted)):
            raise ConfigMismatch(
                f"{out} already holds a build with a different config or source "
                f"({_first_difference(found, wanted)}); use a new --out or delete {out}"
            )
        return
    write_json_atomic(path, wanted)


def load_recorded_config(out: str | Path, cluster: ClusterConfig) -> tuple[MirrorsetConfig, str]:
    """The config and source recorded in ``OUT/config.json``, run with ``cluster``."""
    path = config_path(out)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {out} is not a mirrorset build")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    return config_from_dataset_dict(recorded["config"], cluster), recorded["source"]


def build(source: str, out: str | Path, config: MirrorsetConfig, *, progress: bool = True) -> BuildReport:
    """Build (or finish building) the dataset of ``source`` into ``out``."""
    from pipeline.ingest import iter_source_paths

    out = Path(out)
    paths = iter_source_paths(source)  # validates the source before anything is written
    out.mkdir(parents=True, exist_ok=True)
    record_config(out, config, source)
    accepted, sources = _ingest(out, paths, config, progress)
    with _backend(config.cluster) as backend:
        chunks = plan_chunks(accepted, config.cluster.detect_chunk_size)
        _detect(backend, out, chunks, config, progress)
        usable = [v.source_id for v in iter_verdicts(out, chunks) if v.usable_faces]
        tasks = plan_shards(usable, config.subset, config.output.sources_per_shard)
        summaries = _run_shards(backend, out, tasks, config, progress)
    rejects = _merge_rejects(out, chunks, tasks)
    report = BuildReport(
        out=str(out),
        sources=sources,
        accepted=len(accepted),
        usable=len(usable),
        shards=len(tasks),
        shards_skipped=sum(s.skipped for s in summaries),
        pairs=sum(s.pairs for s in summaries),
        rejects=rejects,
    )
    _write_dataset_json(out, config, source, report, summaries)
    return report


def plan_shards(usable_ids: Sequence[str], subset: str, sources_per_shard: int) -> list[ShardTask]:
    """Sorted ids chunked by ``sources_per_shard``: shard membership depends on the ids only."""
    ordered = sorted(usable_ids)
    return [
        ShardTask(subset, i, tuple(ordered[start : start + sources_per_shard]))
        for i, start in enumerate(range(0, len(ordered), sources_per_shard))
    ]


def regenerate(
    out: str | Path,
    subset: str,
    shards: Sequence[int] | None = None,
    *,
    cluster: ClusterConfig = ClusterConfig(num_workers=1),
    progress: bool = True,
) -> list[ShardSummary]:
    """Delete and rebuild shards of ``subset`` (all, or the ``shards`` indices) from the
    manifests and the recorded config; the result is byte-identical to the original."""
    out = Path(out)
    config, _source = load_recorded_config(out, cluster)
    if subset != config.subset:
        raise ValueError(f"{out} holds subset {config.subset!r}, not {subset!r}")
    table = pq.read_table(detections_path(out), columns=["source_id", "usable_faces"], partitioning=None)
    usable = [r["source_id"] for r in table.to_pylist() if r["usable_faces"]]
    tasks = plan_shards(usable, subset, config.output.sources_per_shard)
    if shards is not None:
        known = {t.index for t in tasks}
        unknown = sorted(set(shards) - known)
        if unknown:
            raise ValueError(f"no shard(s) {unknown} in {out}; it has indices 0..{len(tasks) - 1}")
        tasks = [t for t in tasks if t.index in set(shards)]
    for task in tasks:
        for path in shard_outputs(out, task.subset, task.index):
            path.unlink(missing_ok=True)
    with _backend(config.cluster) as backend:
        return _run_shards(backend, out, tasks, config, progress)


def _backend(cluster: ClusterConfig) -> Backend:
    return open_backend(cluster.resolved_backend(), num_workers=cluster.num_workers, address=cluster.address)


def _ingest(out: Path, paths: Iterator[str], config: MirrorsetConfig, progress: bool) -> tuple[list[tuple[str, str]], int]:
    """Write sources.parquet and the ingest rejects (reused when both exist);
    returns the accepted ``(source_id, path)`` pairs and the number of sources."""
    from pipeline.ingest import ingest, to_reject_row, to_source_row

    if not (sources_path(out).is_file() and ingest_rejects_path(out).is_file()):
        if config.limit:
            paths = (p for _, p in zip(range(config.limit), paths))
        with ParquetPartWriter(ingest_rejects_path(out), REJECTS_SCHEMA) as rejects, ParquetPartWriter(
            sources_path(out), SOURCES_SCHEMA
        ) as sources:
            for result in ingest(paths, limits=config.ingest, progress=progress):
                sources.write(to_source_row(result))
                if result.status != "accepted":
                    rejects.write(to_reject_row(result))
    table = pq.read_table(sources_path(out), columns=["source_id", "path", "status"], partitioning=None)
    rows = table.to_pylist()
    accepted = [(r["source_id"], r["path"]) for r in rows if r["status"] == "accepted"]
    return accepted, len(rows)


def _detect(backend: Backend, out: Path, chunks: list[DetectChunk], config: MirrorsetConfig, progress: bool) -> None:
    """Detect the chunks not yet committed (no worker loads a model when all are), then merge."""
    stage = DetectStage(
        out, config.detector, config.gates, config.ingest, Resources(cpus=config.cluster.num_cpus_per_worker)
    )
    missing = [chunk for chunk in chunks if not chunk_is_done(out, chunk)]
    run_tasks(
        backend, stage, missing, label=lambda c: f"detect chunk {c.index}",
        max_retries=config.cluster.max_retries, progress=progress, unit="chunk",
        workers=config.cluster.detect_actors or None,
    )
    merge_detections(out, chunks, detections_path(out))


def _run_shards(
    backend: Backend, out: Path, tasks: list[ShardTask], config: MirrorsetConfig, progress: bool
) -> list[ShardSummary]:
    stage = ShardStage(out, SimulatedProducer(str(out), config), Resources(cpus=config.cluster.num_cpus_per_worker))
    return run_tasks(
        backend, stage, tasks, label=lambda t: t.name,
        max_retries=config.cluster.max_retries, progress=progress, unit="shard",
    )


class SimulatedProducer:
    """Reads a shard's photos and detections and synthesizes their pairs (runs on workers)."""

    def __init__(self, out: str, config: MirrorsetConfig) -> None:
        self.out = out
        self.config = config

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # one core per worker; also keeps results independent of core count

    def produce(self, task: ShardTask) -> Iterator[SourceOutput]:
        from detectors.records import PortraitDetections
        from pipeline.ingest import read_source
        from pipeline.synthesis import synthesize_source

        wanted = list(task.source_ids)
        paths = _rows_by_id(sources_path(self.out), wanted, ["source_id", "path"])
        detections = _rows_by_id(detections_path(self.out), wanted, None)
        for source_id in wanted:
            path = paths[source_id]["path"]
            image = read_source(path, limits=self.config.ingest, expected_id=source_id)
            yield synthesize_source(
                image,
                PortraitDetections.from_row(detections[source_id]),
                source_id=source_id,
                path=path,
                shard=task.name,
                config=self.config,
            )


def _rows_by_id(path: Path, ids: list[str], columns: list[str] | None) -> dict[str, dict[str, Any]]:
    table = pq.read_table(path, columns=columns, filters=[("source_id", "in", ids)], partitioning=None)
    rows = {row["source_id"]: row for row in table.to_pylist()}
    missing = sorted(set(ids) - set(rows))
    if missing:
        raise ValueError(f"{path} has no row for source(s) {missing}")
    return rows


def _merge_rejects(out: Path, chunks: list[DetectChunk], tasks: list[ShardTask]) -> int:
    """rejects.parquet = ingest rejects, then detect rejects, then each shard's, in order."""
    paths = {source_id: path for chunk in chunks for source_id, path in chunk.sources}

    def rows() -> Iterator[dict[str, Any]]:
        yield from pq.read_table(ingest_rejects_path(out), partitioning=None).to_pylist()
        for verdict in iter_verdicts(out, chunks):
            if not verdict.usable_faces:
                yield {
                    "source_id": verdict.source_id,
                    "path": paths[verdict.source_id],
                    "stage": "detect",
                    "reason": verdict.reject_reason,
                    "detail": "no usable face under the quality gates",
                }
        for task in tasks:
            yield from pq.read_table(shard_rejects_path(out, task.subset, task.index), partitioning=None).to_pylist()

    return write_table(rejects_path(out), rows(), REJECTS_SCHEMA)


def _write_dataset_json(
    out: Path, config: MirrorsetConfig, source: str, report: BuildReport, summaries: list[ShardSummary]
) -> None:
    write_json_atomic(
        dataset_json_path(out),
        {
            "schema_version": SCHEMA_VERSION,
            "subset": config.subset,
            "source": source,
            "config": config.dataset_dict(),
            "versions": versions(),
            "counts": {
                "sources": report.sources,
                "accepted": report.accepted,
                "usable": report.usable,
                "shards": report.shards,
                "pairs": report.pairs,
                "rejects": report.rejects,
            },
            "shards": [
                {
                    "name": s.shard,
                    "pairs": s.pairs,
                    "tar": shard_tar_path(out, config.subset, i).relative_to(out).as_posix(),
                }
                for i, s in enumerate(summaries)
            ],
        },
    )


def _first_difference(found: Any, wanted: Any, path: str = "") -> str:
    if isinstance(found, dict) and isinstance(wanted, dict):
        for key in sorted(set(found) | set(wanted)):
            if found.get(key) != wanted.get(key):
                return _first_difference(found.get(key), wanted.get(key), f"{path}.{key}" if path else key)
    return f"{path or 'value'}: recorded {found!r}, now {wanted!r}"

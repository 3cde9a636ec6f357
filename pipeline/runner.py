"""The shard lifecycle, once for every backend.

:class:`ShardStage` is the shard commit protocol: skip if the marker matches the files;
otherwise stream the producer's samples into the tar (``.partial`` then rename), the
pairs rows into the pairs part and the per-shard rejects into ``_work/rejects/<shard>.parquet``
(each atomic), and write the marker last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

from manifests.markers import is_complete, read_marker, write_marker
from manifests.parquet import ParquetPartWriter
from manifests.schema import (
    PAIRS_SCHEMA,
    REJECTS_SCHEMA,
    marker_path,
    member_sha_columns,
    pairs_part_path,
    shard_name,
    shard_tar_path,
)
from manifests.digests import file_sha256
from manifests.shards import ShardTarWriter
from pipeline.stage import Resources

@dataclass(frozen=True)
class ShardTask:
    """Shard ``index`` of ``subset`` holds the pairs of ``source_ids`` (sorted)."""

    subset: str
    index: int
    source_ids: tuple[str, ...]

    @property
    def name(self) -> str:
        return shard_name(self.subset, self.index)


@dataclass(frozen=True)
class SourceOutput:
    """What one source contributes to a shard.

    ``samples``: webdataset dicts (``__key__`` + member suffix -> bytes) in key order;
    ``rows``: their PAIRS_SCHEMA rows, same order; ``rejects``: REJECTS_SCHEMA rows.
    """

    samples: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ShardSummary:
    """Small result a shard task returns to the driver."""

    shard: str
    skipped: bool
    pairs: int
    rejects: int


class ShardProducer(Protocol):
    """Makes a shard's content; one instance per worker, ``setup`` before the first shard."""

    def setup(self) -> None: ...

    def produce(self, task: ShardTask) -> Iterator[SourceOutput]:
        """One output per source of ``task``, in ``task.source_ids`` order."""


def shard_rejects_path(out: str | Path, subset: str, index: int) -> Path:
    """``out/_work/rejects/<shard>.parquet``: the rejects a shard's synthesis produced."""
    return Path(out) / "_work" / "rejects" / f"{shard_name(subset, index)}.parquet"


def shard_outputs(out: str | Path, subset: str, index: int) -> tuple[Path, ...]:
    """Every file a shard owns, the marker last."""
    return (
        shard_rejects_path(out, subset, index),
        shard_tar_path(out, subset, index),
        pairs_part_path(out, subset, index),
        marker_path(out, subset, index),
    )


def shard_is_done(out: str | Path, subset: str, index: int) -> bool:
    """The marker exists and the tar, pairs part and rejects part match it in size."""
    if not is_complete(out, subset, index):
        return False
    record = (read_marker(out, subset, index) or {}).get("rejects", {})
    path = shard_rejects_path(out, subset, index)
    return path.is_file() and path.stat().st_size == record.get("bytes")


class ShardStage:
    """Stage running the shard commit protocol around a :class:`ShardProducer`."""

    name = "shards"

    def __init__(self, out: str | Path, producer: ShardProducer, resources: Resources = Resources()) -> None:
        self.out = str(out)
        self.producer = producer
        self.resources = resources

    def setup(self) -> None:
        self.producer.setup()

    def process_batch(self, items: list[ShardTask]) -> list[ShardSummary]:
        return [self.run_shard(task) for task in items]

    def teardown(self) -> None:
        """Producers hold no external resources."""

    def run_shard(self, task: ShardTask) -> ShardSummary:
        if shard_is_done(self.out, task.subset, task.index):
            marker = read_marker(self.out, task.subset, task.index) or {}
            return ShardSummary(
                task.name, True, marker["counts"]["pairs"], marker["rejects"]["rows"]
            )
        for stale in shard_outputs(self.out, task.subset, task.index):
            stale.unlink(missing_ok=True)  # a marker must never outlive a rewrite
        rejects_file = shard_rejects_path(self.out, task.subset, task.index)
        pairs = 0
        rejects: list[dict[str, Any]] = []
        with ShardTarWriter(shard_tar_path(self.out, task.subset, task.index)) as tar, ParquetPartWriter(
            pairs_part_path(self.out, task.subset, task.index), PAIRS_SCHEMA
        ) as part:
            for output in self.producer.produce(task):
                for sample, row in zip(output.samples, output.rows, strict=True):
                    _check_row_digests(row, tar.write(sample))
                part.write_many(output.rows)
                pairs += len(output.rows)
                rejects.extend(output.rejects)
        with ParquetPartWriter(rejects_file, REJECTS_SCHEMA) as reject_part:
            reject_part.write_many(rejects)
        write_marker(
            self.out,
            task.subset,
            task.index,
            {
                "rejects": {
                    "path": rejects_file.relative_to(self.out).as_posix(),
                    "bytes": rejects_file.stat().st_size,
                    "sha256": file_sha256(rejects_file),
                    "rows": len(rejects),
                }
            },
        )
        return ShardSummary(task.name, False, pairs, len(rejects))


def _check_row_digests(row: dict[str, Any], written: dict[str, str]) -> None:
    """The pair row's sha256 columns must name the bytes the tar writer actually wrote."""
    for suffix, column in member_sha_columns(row["image_format"]).items():
        if row[column] != written.get(suffix):
            raise ValueError(f"pair {row['key']}: {column} does not match the written member {suffix!r}")

"""Detection as a stage: chunks of accepted sources -> committed detection parts.

Chunk ``i`` holds sources ``[i * chunk_size, (i + 1) * chunk_size)`` of the sorted
accepted ids; each worker loads the detectors once (``setup``) and writes each chunk's
rows to ``OUT/_work/detections/part-<i:06d>.parquet`` atomically. A chunk whose part
exists with the same source ids is reused, so reruns detect only what is missing.
:func:`merge_detections` concatenates the parts into ``manifests/detections.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow.parquet as pq

from detectors.config import DetectorConfig, GateConfig
from manifests.detections import DETECTIONS_SCHEMA
from manifests.parquet import ParquetPartWriter
from pipeline.imageio import DecodeLimits, content_id, decode_image
from pipeline.stage import Resources


@dataclass(frozen=True)
class DetectChunk:
    """Chunk ``index``: ``(source_id, path)`` pairs in source id order."""

    index: int
    sources: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DetectSummary:
    index: int
    detected: int
    reused: bool


def detections_work_dir(out: str | Path) -> Path:
    return Path(out) / "_work" / "detections"


def chunk_part_path(out: str | Path, index: int) -> Path:
    return detections_work_dir(out) / f"part-{index:06d}.parquet"


def plan_chunks(sources: Sequence[tuple[str, str]], chunk_size: int) -> list[DetectChunk]:
    """Chunks of ``sources`` (``(source_id, path)``, sorted here by id) of ``chunk_size``."""
    ordered = sorted(sources)
    return [
        DetectChunk(i, tuple(ordered[start : start + chunk_size]))
        for i, start in enumerate(range(0, len(ordered), chunk_size))
    ]


def chunk_is_done(out: str | Path, chunk: DetectChunk) -> bool:
    """The chunk's part is committed and holds exactly its source ids, in order."""
    path = chunk_part_path(out, chunk.index)
    if not path.is_file():
        return False
    ids = pq.read_table(path, columns=["source_id"], partitioning=None).column(0).to_pylist()
    return ids == [source_id for source_id, _ in chunk.sources]


class DetectStage:
    """Stage running ``detectors.portrait.PortraitDetector`` on chunks of sources."""

    name = "detect"

    def __init__(
        self,
        out: str | Path,
        detector: DetectorConfig,
        gates: GateConfig,
        limits: DecodeLimits,
        resources: Resources = Resources(),
    ) -> None:
        self.out = str(out)
        self.detector_config = detector
        self.gate_config = gates
        self.limits = limits
        self.resources = resources
        self._detector = None

    def setup(self) -> None:
        from detectors.runtime import load_portrait_detector

        # Loads and pins threads exactly as `mirrorset detect` and library use do.
        self._detector = load_portrait_detector(self.detector_config, self.gate_config)

    def process_batch(self, items: list[DetectChunk]) -> list[DetectSummary]:
        return [self._run_chunk(chunk) for chunk in items]

    def teardown(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def _run_chunk(self, chunk: DetectChunk) -> DetectSummary:
        if chunk_is_done(self.out, chunk):
            return DetectSummary(chunk.index, len(chunk.sources), reused=True)
        if self._detector is None:
            raise RuntimeError("DetectStage.process_batch called before setup()")
        with ParquetPartWriter(chunk_part_path(self.out, chunk.index), DETECTIONS_SCHEMA) as part:
            for source_id, source_path in chunk.sources:
                data = Path(source_path).read_bytes()
                if content_id(data) != source_id:
                    raise ValueError(
                        f"{source_path} changed since ingest: content id {content_id(data)} != {source_id}"
                    )
                record = self._detector.detect(decode_image(data, limits=self.limits))
                part.write({"source_id": source_id, **record.to_row()})
        return DetectSummary(chunk.index, len(chunk.sources), reused=False)


@dataclass(frozen=True)
class DetectVerdict:
    """What the build needs from one detections row."""

    source_id: str
    usable_faces: tuple[int, ...]
    reject_reason: str | None


def iter_verdicts(out: str | Path, chunks: Sequence[DetectChunk]) -> Iterator[DetectVerdict]:
    """Verdicts of every chunk's committed part, in chunk order (reads three columns only)."""
    for chunk in chunks:
        table = pq.read_table(
            chunk_part_path(out, chunk.index),
            columns=["source_id", "usable_faces", "reject_reason"],
            partitioning=None,
        )
        for row in table.to_pylist():
            yield DetectVerdict(row["source_id"], tuple(row["usable_faces"]), row["reject_reason"])


def merge_detections(out: str | Path, chunks: Sequence[DetectChunk], target: str | Path) -> int:
    """Concatenate the chunk parts into ``target`` (atomic); returns the row count."""
    with ParquetPartWriter(target, DETECTIONS_SCHEMA) as merged:
        for chunk in chunks:
            merged.write_many(pq.read_table(chunk_part_path(out, chunk.index), partitioning=None).to_pylist())
    return merged.rows_written

"""Detection as a stage: chunks of accepted sources -> committed detections parts.

Chunk ``i`` holds up to ``cluster.detect_chunk_size`` accepted source ids. Each worker loads
the detectors once (``setup``) and, per chunk, writes the photos that failed to a rejects
part (``manifests/rejects/detect-<i>.parquet``) and then the detections of the others to
``manifests/detections/part-<i>.parquet``; the detections part is the chunk's commit marker.
A photo never stops a chunk: a decode failure keeps its reason code, a photo that changed
since ingest is ``changed_since_ingest``, one running past ``cluster.photo_timeout_s`` is
``timeout``, any other exception is ``internal_error`` with its type and message.

A rerun detects only ids that no committed part holds; new ids (a grown source) go to new
chunks numbered after the existing ones, so existing parts are never rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detectors.config import DetectorConfig, GateConfig
from manifests.detections import DETECTIONS_SCHEMA
from manifests.parquet import encode_rows
from manifests.schema import DETECTIONS_DIR, REJECTS_SCHEMA, detections_part_path, rejects_part_path
from manifests.storage import Store
from pipeline.imageio import DecodeLimits, ImageRejected
from pipeline.ingest import SourceChanged, read_source
from pipeline.stage import Resources
from pipeline.timeouts import WorkTimeout, time_limit


@dataclass(frozen=True)
class DetectChunk:
    """Chunk ``index``: ``(source_id, path)`` pairs in source id order."""

    index: int
    sources: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DetectSummary:
    index: int
    detected: int
    failed: int


def part_index(rel: str) -> int:
    """The index of ``manifests/detections/part-<n>.parquet``."""
    return int(rel.rsplit("-", 1)[-1].removesuffix(".parquet"))


def plan_chunks(sources: Sequence[tuple[str, str]], done: set[str], chunk_size: int, first_index: int) -> list[DetectChunk]:
    """Chunks of the ``(source_id, path)`` pairs whose id is not in ``done``, by id, numbered
    from ``first_index``."""
    todo = sorted(s for s in sources if s[0] not in done)
    return [
        DetectChunk(first_index + i, tuple(todo[start : start + chunk_size]))
        for i, start in enumerate(range(0, len(todo), chunk_size))
    ]


def committed_ids(store: Store) -> tuple[dict[str, int], set[str], int]:
    """(source id -> detections part, ids that failed detection, next free chunk index)."""
    located: dict[str, int] = {}
    last = -1
    for rel in store.list(DETECTIONS_DIR, ".parquet"):
        index = part_index(rel)
        last = max(last, index)
        for source_id in store.read_table(rel, columns=["source_id"]).column(0).to_pylist():
            located[source_id] = index
    failed: set[str] = set()
    for index in range(last + 1):
        rel = rejects_part_path("detect", index)
        if store.exists(rel) and store.exists(detections_part_path(index)):
            failed.update(store.read_table(rel, columns=["source_id"]).column(0).to_pylist())
    return located, failed, last + 1


class DetectStage:
    """Stage running ``detectors.portrait.PortraitDetector`` on chunks of sources."""

    name = "detect"

    def __init__(
        self,
        store: Store,
        detector: DetectorConfig,
        gates: GateConfig,
        limits: DecodeLimits,
        photo_timeout_s: float = 0.0,
        resources: Resources = Resources(),
    ) -> None:
        self.store = store
        self.detector_config = detector
        self.gate_config = gates
        self.limits = limits
        self.photo_timeout_s = photo_timeout_s
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
        if self.store.exists(detections_part_path(chunk.index)):
            return DetectSummary(chunk.index, len(chunk.sources), 0)
        if self._detector is None:
            raise RuntimeError("DetectStage.process_batch called before setup()")
        rows, rejects = [], []
        for source_id, path in chunk.sources:
            try:
                with time_limit(self.photo_timeout_s):
                    image = read_source(path, limits=self.limits, expected_id=source_id)
                    record = self._detector.detect(image)
            except ImageRejected as exc:
                rejects.append(_reject(source_id, path, exc.code, exc.detail))
            except SourceChanged as exc:
                rejects.append(_reject(source_id, path, "changed_since_ingest", str(exc)))
            except WorkTimeout as exc:
                rejects.append(_reject(source_id, path, "timeout", str(exc)))
            except (Exception, MemoryError) as exc:  # one photo never stops a chunk: recorded, not raised
                rejects.append(_reject(source_id, path, "internal_error", f"{type(exc).__name__}: {exc}"))
            else:
                rows.append({"source_id": source_id, **record.to_row()})
        self.store.write_bytes(rejects_part_path("detect", chunk.index), encode_rows(rejects, REJECTS_SCHEMA))
        self.store.write_bytes(detections_part_path(chunk.index), encode_rows(rows, DETECTIONS_SCHEMA))
        return DetectSummary(chunk.index, len(rows), len(rejects))


def _reject(source_id: str, path: str, reason: str, detail: str) -> dict:
    return {
        "source_id": source_id, "path": path, "stage": "detect", "reason": reason, "detail": detail,
        "subset": None, "person_index": None, "edit_index": None, "view": None, "attempt": None,
        "measurements": None,
    }  # fmt: skip

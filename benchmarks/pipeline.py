"""`mirrorset bench pipeline`: shard throughput against the codec floor, 2-vs-1 worker scaling, memory.

Workload (fixed): the sample-corpus portraits that pass the gates (astronaut, grace_hopper)
and their mirror images, each scaled (bicubic) so its long side is 1024 px, written as PNG
into a temporary folder: 4 sources, one per shard, ``edits`` chains per face and 8 views
each. Ingest and detection run once first and are reused (not timed).

Measured, each on the same pairs at the same sizes:
- build: the shard stage alone (read photo + detections, align, plan the chain, paste,
  8 views, encode JPEG q95 4:4:4 + mask PNG + JSON, write tar, part, marker), on Ray with
  1 worker and with 2 workers, one CPU each, timed in steady state from the first shard's
  start to the last shard's end as the workers report them; the actors' start-up (a new
  Python process importing the stack, once per worker per build) is reported apart as
  ``startup_s_1`` / ``startup_s_2``;
- floor: for every pair, decode its source file, one warpAffine to the pair's size with its
  augmentation matrix (the "remap"), two JPEG q95 4:4:4 encodes; one core, one thread.
``ratio_to_floor`` = build pairs/s per core (1 worker) / floor pairs/s;
``scaling_2_vs_1`` = pairs/s with 2 workers / with 1; ``peak_rss_mb_per_worker`` is the
largest ru_maxrss any shard worker reported. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

WORKLOAD_PHOTOS = ("astronaut", "grace_hopper")
WORKLOAD_LONG_SIDE = 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--edits", type=int, default=4, help="chains per face (pairs = 4 sources x edits x 8)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--keep", help="keep the workload and builds in this folder")


def run(args: argparse.Namespace) -> int:
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mirrorset-bench-"))
    try:
        result = measure(root, edits=args.edits)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not args.json:
        print(
            f"workload: {result['sources']} sources at {WORKLOAD_LONG_SIDE}px long side, "
            f"{result['pairs']} pairs\n"
            f"build 1 worker: {result['pairs_per_s_1']:.1f} pairs/s; 2 workers: {result['pairs_per_s']:.1f} pairs/s "
            f"(scaling {result['scaling_2_vs_1']:.2f})\n"
            f"codec floor (decode + remap + 2 JPEG per pair, 1 core): {result['floor_pairs_per_s']:.1f} pairs/s; "
            f"ratio to floor {result['ratio_to_floor']:.2f}\n"
            f"peak RSS per worker: {result['peak_rss_mb_per_worker']:.0f} MB"
        )
    print(json.dumps(result, sort_keys=True))
    return 0


def make_workload(folder: Path) -> list[Path]:
    """The fixed source photos (see the module docstring), written as PNG."""
    import cv2
    import numpy as np

    from pipeline.imageio import encode_png, load_image
    from pipeline.sample_corpus import sample_paths

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for photo in sample_paths():
        if photo.name not in WORKLOAD_PHOTOS:
            continue
        rgb = load_image(photo.path)
        factor = WORKLOAD_LONG_SIDE / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        for variant, image in (("", big), ("-mirrored", np.ascontiguousarray(big[:, ::-1]))):
            path = folder / f"{photo.name}{variant}.png"
            path.write_bytes(encode_png(image))
            written.append(path)
    return written


def measure(root: Path, *, edits: int) -> dict[str, Any]:
    from pipeline.build import build, plan_shards
    from pipeline.config import ClusterConfig, MirrorsetConfig, with_overrides

    photos = make_workload(root / "photos")
    config = with_overrides(
        MirrorsetConfig(),
        {"simulated.edits_per_face": edits, "output.sources_per_shard": 1, "cluster.num_workers": 1},
    )
    prepared = root / "prepared"
    build(str(root / "photos"), prepared, config, progress=False)
    import pyarrow.parquet as pq

    from manifests.schema import detections_path

    usable = [
        r["source_id"]
        for r in pq.read_table(detections_path(prepared), columns=["source_id", "usable_faces"]).to_pylist()
        if r["usable_faces"]
    ]
    tasks = plan_shards(usable, config.subset, config.output.sources_per_shard)
    runs = {}
    for workers in (1, 2):
        runs[workers] = _timed_shards(
            prepared, tasks, replace(config, cluster=ClusterConfig(backend="ray", num_workers=workers))
        )
    pairs = runs[1]["pairs"]
    if runs[2]["pairs"] != pairs:
        raise RuntimeError(f"1 and 2 workers built {pairs} and {runs[2]['pairs']} pairs")
    floor_s = _floor_seconds(prepared)
    per_s_1 = pairs / runs[1]["seconds"]
    per_s_2 = pairs / runs[2]["seconds"]
    return {
        "sources": len(photos),
        "pairs": pairs,
        "pairs_per_s": per_s_2,
        "pairs_per_s_1": per_s_1,
        "pairs_per_s_per_core": per_s_1,
        "floor_pairs_per_s": pairs / floor_s,
        "ratio_to_floor": per_s_1 / (pairs / floor_s),
        "scaling_2_vs_1": per_s_2 / per_s_1,
        "peak_rss_mb_per_worker": max(runs[1]["peak_rss_mb"], runs[2]["peak_rss_mb"]),
        "startup_s_1": runs[1]["startup_s"],
        "startup_s_2": runs[2]["startup_s"],
        "measured": "steady-state shard stage on Ray (first shard start to last shard end, 1 and 2 workers, "
        "1 CPU each; actor start-up reported as startup_s_*) vs per-pair decode+warpAffine+2 JPEG on 1 core",
    }


class _MeasuredShardStage:
    """A ShardStage that also reports the worker's peak RSS with each summary."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.name = stage.name
        self.resources = stage.resources

    def setup(self) -> None:
        self.stage.setup()

    def process_batch(self, items: list) -> list:
        start = time.time()
        summaries = self.stage.process_batch(items)
        end = time.time()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return [(summary, rss_mb, start, end) for summary in summaries]

    def teardown(self) -> None:
        self.stage.teardown()


def _timed_shards(out: Path, tasks: list, config: Any) -> dict[str, float]:
    from pipeline.backends import open_backend
    from pipeline.build import SimulatedProducer
    from pipeline.runner import ShardStage, shard_outputs
    from pipeline.tasks import run_tasks

    for task in tasks:
        for path in shard_outputs(out, task.subset, task.index):
            path.unlink(missing_ok=True)
    stage = _MeasuredShardStage(ShardStage(out, SimulatedProducer(str(out), config)))
    with open_backend("ray", num_workers=config.cluster.num_workers) as backend:
        start = time.time()
        results = run_tasks(backend, stage, tasks, label=lambda t: t.name)
        wall = time.time() - start
    first = min(r[2] for r in results)
    last = max(r[3] for r in results)
    return {
        "seconds": last - first,
        "startup_s": wall - (last - first),
        "pairs": sum(r[0].pairs for r in results),
        "peak_rss_mb": max(r[1] for r in results),
    }


def _floor_seconds(out: Path) -> float:
    """Seconds for decode + warpAffine + two JPEG encodes of every built pair, one thread."""
    import cv2
    import numpy as np
    import pyarrow.parquet as pq

    from manifests.schema import pairs_dir, sources_path
    from pipeline.imageio import decode_image, encode_jpeg

    cv2.setNumThreads(1)
    paths = {r["source_id"]: r["path"] for r in pq.read_table(sources_path(out)).to_pylist()}
    pairs = pq.read_table(pairs_dir(out), columns=["source_id", "aug_matrix", "width", "height"]).to_pylist()
    files = {source_id: Path(path).read_bytes() for source_id, path in paths.items()}
    start = time.perf_counter()
    for pair in pairs:
        rgb = decode_image(files[pair["source_id"]])
        matrix = np.asarray(pair["aug_matrix"], np.float64).reshape(2, 3)
        view = cv2.warpAffine(rgb, matrix, (pair["width"], pair["height"]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
        encode_jpeg(view, 95)
        encode_jpeg(view, 95)
    return time.perf_counter() - start

"""`mirrorset bench pipeline`: shard throughput against the irreducible floor, scaling, memory.

Workloads (fixed; ingest and detection run once first and are not timed):

- ``--subset simulated``: the sample-corpus portraits the default framing keeps (astronaut,
  grace_hopper, zidane) and their mirror images, 6 sources, ``--edits`` chains per face and
  8 views each, at the default face-centred framing (views of ~1024 px); shards of ~4 edits.
- ``--subset professional``: bus.jpg and zidane.jpg upscaled 3x (bicubic; 7.9 and 8.3 MP), the
  shape of the reference recipe (``params.yaml``'s commented combos: 91 % of its ~12,300 pairs
  per photo are two-op edits of 8 views): a seeded sample of ``--edits`` (default 27) edits per
  person of ``--ops-per-edit`` (default 2) applicable professional ops at +-100, ``--views``
  (default 8) views each of ~2.2 MP. ``--ops-per-edit 1 --views 4 --edits 0`` is the workload
  of earlier notes (every single op at +-100, 4 views each).

Measured on the same pairs at the same sizes, one thread per process:

- build: the shard stage alone (read photo + detections once per run, make the edit, draw the
  views, warp, encode JPEG q95 4:4:4 + the four map PNGs + JSON, write tar, parts, marker) on Ray
  with 1 worker and with 2 workers, one CPU each, timed from the first shard's start to the
  last shard's end as the workers report them (actor start-up reported apart);
- floor (``ratio_to_floor``, the target): the irreducible work of the same pairs: decode each
  photo ONCE, then per pair one warpAffine of before, one of after and one of the mask to the
  pair's size (base-frame and augmentation matrices composed), two JPEG q95 4:4:4 encodes and
  the mask PNG encode (of an empty mask: cheaper than a real one, so the floor is, if
  anything, too fast);
- old floor (``ratio_to_floor_decode_per_pair``, kept for comparison with earlier numbers):
  decode the photo for every pair, one warpAffine, two JPEG encodes.

``scaling_2_vs_1`` = pairs/s with 2 workers / with 1; ``peak_rss_mb_per_worker`` is the largest
ru_maxrss a shard worker reported. ``qa_cost`` = 1 - (pairs/s with QA) / (pairs/s with
``qa.enabled: false``), both on 1 worker. ``detect_share`` = one photo's detection (decode and
detect, models loaded) / one photo's share of the 1-worker shard time. ``--memory`` instead builds the professional subset of ONE
upscaled ~8K photo (bus.jpg x7, 5670 x 7560; its largest person only) in fresh processes:
``count / 8`` two-op edits of 8 views each, so ``count`` pairs planned (views that fail a QA
gate become reject rows; ``pairs_built`` says how many were written), for 500 and 5000, and
reports each process's RSS: ``detect_peak_rss_mb`` (ingest and detection of the photo),
``shard_peak_rss_mb`` (the shard stage alone: the kernel's peak, reset after detection),
``shard_rss_mb_median`` (the shard stage's RSS sampled every 0.2 s) and ``peak_rss_mb`` (the
whole process); then times the 5000-pair shard stage with 1 and 2 workers. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

SIMULATED_PHOTOS = ("astronaut", "grace_hopper", "zidane")
PROFESSIONAL_PHOTOS = ("bus", "zidane")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subset", choices=["simulated", "professional"], default="simulated")
    parser.add_argument("--edits", type=int, help="simulated: chains per face (default 4); professional: "
                        "edits per person, a seeded sample (default 27; 0 = all)")
    parser.add_argument("--views", type=int, default=8, help="professional: views per edit")
    parser.add_argument("--ops-per-edit", type=int, default=2, help="professional: ops composed per edit")
    parser.add_argument("--memory", action="store_true", help="professional memory and 1-vs-2 workers on one 8K photo")
    parser.add_argument("--pairs", default="500,5000", help="--memory: pair counts to compare")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--keep", help="keep the workload and builds in this folder")


def run(args: argparse.Namespace) -> int:
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mirrorset-bench-"))
    try:
        if args.memory:
            result = measure_memory(root, [int(n) for n in args.pairs.split(",")])
        else:
            edits = args.edits if args.edits is not None else (4 if args.subset == "simulated" else 27)
            result = measure(root, args.subset, edits=edits, views=args.views, ops_per_edit=args.ops_per_edit)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not args.json:
        for key, value in sorted(result.items()):
            print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    print(json.dumps(result, sort_keys=True))
    return 0


def make_photos(folder: Path, names: tuple[str, ...], factor: float, mirrored: bool) -> list[Path]:
    """Sample photos ``names`` scaled by ``factor`` (bicubic), and their mirror images, as JPEG q95."""
    import cv2
    import numpy as np

    from pipeline.imageio import encode_jpeg, load_image
    from pipeline.sample_corpus import sample_paths

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for photo in sample_paths():
        if photo.name not in names:
            continue
        rgb = load_image(photo.path)
        if factor != 1.0:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor)), interpolation=cv2.INTER_CUBIC)
        variants = (("", rgb), ("-mirrored", np.ascontiguousarray(rgb[:, ::-1]))) if mirrored else (("", rgb),)
        for suffix, image in variants:
            path = folder / f"{photo.name}{suffix}.jpg"
            path.write_bytes(encode_jpeg(image, 95))
            written.append(path)
    return written


def _config(subset: str, *, edits: int, views: int, ops_per_edit: int, workers: int = 1) -> Any:
    from pipeline.config import MirrorsetConfig, with_overrides

    settings: dict[str, Any] = {"cluster.num_workers": workers}
    if subset == "simulated":
        settings.update({"simulated.edits_per_face": edits, "output.shard_target_bytes": 4 * 8 * 2 * 380_000,
                         "output.edits_per_run": 2})  # fmt: skip
    else:
        combo = {"size": ops_per_edit, "views": views, "max_edits": edits or None}
        settings.update({"professional.combos": [combo],
                         "output.shard_target_bytes": 12 * views * 2 * 1_000_000, "output.edits_per_run": 4})  # fmt: skip
    return with_overrides(MirrorsetConfig(), settings)


def measure(root: Path, subset: str, *, edits: int, views: int, ops_per_edit: int) -> dict[str, Any]:
    from pipeline.build import build
    from pipeline.config import ClusterConfig

    if subset == "simulated":
        photos = make_photos(root / "photos", SIMULATED_PHOTOS, 1.0, mirrored=True)
    else:
        photos = make_photos(root / "photos", PROFESSIONAL_PHOTOS, 3.0, mirrored=False)
    config = _config(subset, edits=edits, views=views, ops_per_edit=ops_per_edit)
    prepared = str(root / "prepared")
    build(str(root / "photos"), prepared, config, subsets=[], progress=False)  # ingest + detect, untimed
    runs = {}
    for workers in (1, 2):
        runs[workers] = _timed_shards(prepared, subset, replace(config, cluster=ClusterConfig(backend="ray", num_workers=workers)))
    pairs = runs[1]["pairs"]
    if runs[2]["pairs"] != pairs:
        raise RuntimeError(f"1 and 2 workers built {pairs} and {runs[2]['pairs']} pairs")
    floor_s, old_floor_s = _floor_seconds(prepared, subset)
    per_s_1 = pairs / runs[1]["seconds"]
    without_qa = _timed_shards(prepared, subset, replace(config, qa=replace(config.qa, enabled=False),
                                                          cluster=ClusterConfig(backend="ray", num_workers=1)))  # fmt: skip
    detect_s = _detect_seconds_per_photo(photos, config)
    return {
        "subset": subset,
        "workload": {"edits": edits, "views": views, "ops_per_edit": ops_per_edit} if subset == "professional" else {"edits": edits},
        "sources": len(photos),
        "pairs": pairs,
        "mean_pair_megapixels": runs[1]["mean_mp"],
        "pairs_per_s_per_core": per_s_1,
        "pairs_per_s_2_workers": pairs / runs[2]["seconds"],
        "floor_pairs_per_s": pairs / floor_s,
        "ratio_to_floor": per_s_1 / (pairs / floor_s),
        "ratio_to_floor_decode_per_pair": per_s_1 / (pairs / old_floor_s),
        "scaling_2_vs_1": runs[1]["seconds"] / runs[2]["seconds"],
        "peak_rss_mb_per_worker": max(runs[1]["peak_rss_mb"], runs[2]["peak_rss_mb"]),
        "startup_s_1": runs[1]["startup_s"],
        "startup_s_2": runs[2]["startup_s"],
        "pairs_per_s_per_core_without_qa": without_qa["pairs"] / without_qa["seconds"],
        "qa_cost": 1.0 - per_s_1 / (without_qa["pairs"] / without_qa["seconds"]),
        "detect_s_per_photo": detect_s,
        "synthesis_s_per_photo": runs[1]["seconds"] / len(photos),
        "detect_share": detect_s / (runs[1]["seconds"] / len(photos)),
    }


def _detect_seconds_per_photo(photos: list[Path], config: Any) -> float:
    """Mean seconds of one photo's detection (decode included, model loading not), one thread."""
    from detectors.runtime import load_portrait_detector
    from pipeline.imageio import load_image

    detector = load_portrait_detector(config.detector, config.gates)
    try:
        start = time.perf_counter()
        for path in photos:
            detector.detect(load_image(path))
        return (time.perf_counter() - start) / len(photos)
    finally:
        detector.close()


class _MeasuredShardStage:
    """A ShardStage that also reports the worker's peak RSS and wall-clock span with each summary."""

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


def _timed_shards(out: str, subset: str, config: Any) -> dict[str, float]:
    import pandas as pd

    from manifests.schema import marker_path
    from manifests.storage import Store
    from pipeline.backends import open_backend
    from pipeline.recipes import recipe_for
    from pipeline.plan import plan_generation, samples_per_shard
    from pipeline.runner import ShardStage
    from pipeline.tasks import run_tasks

    store = Store(out)
    recipe = recipe_for(subset, config)
    paths = {r["source_id"]: r["path"] for r in pd.read_parquet(store.uri("manifests/sources")).to_dict("records")}
    tasks = plan_generation(store, recipe, paths, edits_per_run=config.output.edits_per_run,
                            samples_per_shard=samples_per_shard(config.output.shard_target_bytes,
                                                                config.output.bytes_per_pixel, recipe.nominal_pixels))  # fmt: skip
    for task in tasks:
        store.delete(marker_path(task.subset, task.index))
    stage = _MeasuredShardStage(ShardStage(store, config, subset))
    with open_backend("ray", num_workers=config.cluster.num_workers) as backend:
        start = time.time()
        results = run_tasks(backend, stage, tasks, label=lambda t: str(t.index))
        wall = time.time() - start
    pairs = pd.read_parquet(store.uri("manifests/pairs"), columns=["subset", "width", "height"])
    pairs = pairs[pairs.subset == subset]
    first, last = min(r[2] for r in results), max(r[3] for r in results)
    return {
        "seconds": last - first,
        "startup_s": wall - (last - first),
        "pairs": sum(r[0].pairs for r in results),
        "peak_rss_mb": max(r[1] for r in results),
        "mean_mp": float((pairs.width * pairs.height).mean() / 1e6),
    }


def _floor_seconds(out: str, subset: str) -> tuple[float, float]:
    """(irreducible floor, old decode-per-pair floor) in seconds for the built pairs, one thread."""
    import cv2
    import numpy as np
    import pandas as pd

    from manifests.storage import Store
    from pipeline.imageio import decode_image, encode_jpeg, encode_map_png

    cv2.setNumThreads(1)
    store = Store(out)
    paths = {r["source_id"]: r["path"] for r in pd.read_parquet(store.uri("manifests/sources")).to_dict("records")}
    pairs = pd.read_parquet(store.uri("manifests/pairs"), columns=["subset", "source_id", "base_matrix", "aug_matrix", "width", "height"])
    pairs = pairs[pairs.subset == subset].to_dict("records")
    files = {source_id: Path(path).read_bytes() for source_id, path in paths.items() if source_id in {p["source_id"] for p in pairs}}

    def warp(image: np.ndarray, pair: dict) -> np.ndarray:
        base = np.vstack([np.asarray(pair["base_matrix"], np.float64).reshape(2, 3), [0, 0, 1]])
        aug = np.asarray(pair["aug_matrix"], np.float64).reshape(2, 3)
        return cv2.warpAffine(image, aug @ base, (pair["width"], pair["height"]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip

    start = time.perf_counter()
    decoded = {source_id: decode_image(data) for source_id, data in files.items()}
    masks = {source_id: np.zeros(image.shape[:2], np.uint8) for source_id, image in decoded.items()}
    for pair in pairs:
        image = decoded[pair["source_id"]]
        encode_jpeg(warp(image, pair), 95)
        encode_jpeg(warp(image, pair), 95)
        encode_map_png(warp(masks[pair["source_id"]], pair))
    floor = time.perf_counter() - start
    start = time.perf_counter()
    for pair in pairs:
        view = warp(decode_image(files[pair["source_id"]]), pair)
        encode_jpeg(view, 95)
        encode_jpeg(view, 95)
    return floor, time.perf_counter() - start


def measure_memory(root: Path, counts: list[int]) -> dict[str, Any]:
    """Peak RSS of one-photo professional builds of ``counts`` pairs (fresh processes), and the
    1-vs-2-worker time of the largest."""
    make_photos(root / "photos", ("bus",), 7.0, mirrored=False)
    result: dict[str, Any] = {"photo": "bus.jpg x7 (5670 x 7560, 42.9 MP)"}
    for count in counts:
        for workers in ((1, 2) if count == max(counts) else (1,)):
            out = root / f"out-{count}-{workers}"
            command = [sys.executable, "-c", _MEMORY_SCRIPT, str(root / "photos"), str(out), str(count), str(workers)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            result[f"pairs_{count}_workers_{workers}"] = measured
    big = max(counts)
    result["time_2_vs_1_workers"] = result[f"pairs_{big}_workers_2"]["shard_seconds"] / result[f"pairs_{big}_workers_1"]["shard_seconds"]
    return result


#: Run in a fresh process: build ``count`` professional pairs of the one photo, report RSS and time.
#: Peak RSS per stage is the kernel's VmHWM, reset (``/proc/self/clear_refs``) between stages;
#: a thread samples the current RSS every 0.2 s during the shard stage.
_MEMORY_SCRIPT = """
import json, re, resource, sys, threading, time
from pipeline.build import build
from pipeline.config import MirrorsetConfig, with_overrides
photos, out, count, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def status_mb(field):
    return int(re.search(field + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
largest = {"gates.people_policy": "largest"}
build(photos, out, with_overrides(MirrorsetConfig(), {"cluster.num_workers": 1, **largest}), subsets=[], progress=False)
detect_peak = status_mb("VmHWM")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
views = 8
config = with_overrides(MirrorsetConfig(), {
    **largest, "cluster.num_workers": workers, "cluster.backend": "local" if workers == 1 else "ray",
    "professional.combos": [{"size": 2, "views": views, "max_edits": max(1, count // views)}],
    "output.shard_target_bytes": 200 * 2 * 1_000_000, "output.edits_per_run": 8,
})
samples, done = [], threading.Event()
def sample():
    while not done.wait(0.2):
        samples.append(status_mb("VmRSS"))
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
report = build(None, out, config, subsets=["professional"], stage="shards", progress=False)
seconds = time.perf_counter() - start
done.set()
subset = report.subsets[0]
samples.sort()
print(json.dumps({"pairs_planned": subset.planned, "pairs_built": subset.pairs, "shard_seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "detect_peak_rss_mb": detect_peak, "shard_peak_rss_mb": status_mb("VmHWM"),
                  "shard_rss_mb_median": samples[len(samples) // 2] if samples else None}))
"""

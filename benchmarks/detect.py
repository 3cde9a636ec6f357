"""Benchmark `mirrorset bench detect`: detector latency per stage on one core at 1024 px.

Pins the process to one core (os.sched_setaffinity where available, torch and OpenCV
to one thread), loads the models once (``ms_load``), then times ``detect`` on real
photos resized to a 1024 px long side with the default configuration. Prints a human
summary, then as the last line one JSON object: ms_person, ms_face, ms_pose, ms_total
(means over images x repeats), ms_total_max, ms_load, peak_rss_mb.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import statistics
import time
from pathlib import Path

LONG_SIDE = 1024
#: (package, path inside it) of the real photos timed.
PHOTOS = (
    ("skimage", "data/astronaut.png"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("insightface", "data/images/t1.jpg"),
    ("ultralytics", "assets/bus.jpg"),
    ("ultralytics", "assets/zidane.jpg"),
)


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package} is not installed")
    return Path(spec.origin).parent / relative


def pin_one_core() -> str:
    """Restrict this process to one CPU and one thread in torch / OpenCV; returns what was done."""
    import cv2
    import torch

    pinned = "no sched_setaffinity"
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        pinned = f"cpu {core}"
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return pinned


def run(repeat: int = 5) -> dict[str, float]:
    """Run the benchmark, print the summary and the JSON line, return the JSON object."""
    pinned = pin_one_core()
    import cv2

    from detectors.portrait import PortraitDetector
    from pipeline.imageio import load_image

    images = {}
    for package, relative in PHOTOS:
        rgb = load_image(_package_file(package, relative))
        factor = LONG_SIDE / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
        images[Path(relative).name] = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)

    start = time.perf_counter()
    detector = PortraitDetector()
    detector.load()
    ms_load = 1e3 * (time.perf_counter() - start)

    rows = []
    for name, rgb in images.items():
        detector.detect(rgb)  # warm-up
        timings = [detector.detect_timed(rgb)[1] for _ in range(repeat)]
        record = detector.detect(rgb)
        row = {key: statistics.mean(getattr(t, key) for t in timings)
               for key in ("ms_person", "ms_face", "ms_pose", "ms_total")}
        rows.append(row)
        print(f"{name:18s} {rgb.shape[1]}x{rgb.shape[0]} persons {len(record.persons)} faces {len(record.faces)} "
              f"poses {len(record.poses)}  person {row['ms_person']:6.1f} ms  face {row['ms_face']:5.1f} ms  "
              f"pose {row['ms_pose']:5.1f} ms  total {row['ms_total']:6.1f} ms")
    detector.close()
    result = {key: round(statistics.mean(r[key] for r in rows), 2)
              for key in ("ms_person", "ms_face", "ms_pose", "ms_total")}
    result["ms_total_max"] = round(max(r["ms_total"] for r in rows), 2)
    result["ms_load"] = round(ms_load, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["images"] = len(rows)
    result["repeat"] = repeat
    print(f"pinned to {pinned}, torch/OpenCV 1 thread, long side {LONG_SIDE}, default config "
          f"(people_policy=largest), {repeat} timed runs per image after one warm-up")
    print(json.dumps(result))
    return result

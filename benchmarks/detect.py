"""Benchmark `mirrorset bench detect`: detection quality on hand-annotated photos, latency, 8K photos.

Pins the process to one core (os.sched_setaffinity where available; torch and OpenCV one
thread, as ``PortraitDetector.load`` does everywhere) and loads the models once (``ms_load``).

- Quality: every photo of ``tests/fixtures/detect_annotations.json`` (the real photos our
  installed packages ship, annotated by hand) at its own resolution, default configuration;
  scored by ``detectors.evaluation``: ``face_recall`` and ``face_precision`` over the required
  faces, ``pose_ok_rate`` = share of annotated joints within 10 % of the annotated person box
  diagonal. Goals: recall >= 0.95, precision >= 0.95, pose_ok_rate >= 0.9.
- Latency: ``detect`` on 5 real photos resized to a 1024 px long side (one warm-up, then
  ``repeat`` timed runs each): per-stage means ``ms_person`` (YOLO), ``ms_face`` (face
  search, FaceMesh, association), ``ms_outline`` (segmentation), ``ms_pose`` (pose and its
  check), ``ms_total`` (mean per photo) and ``ms_total_max`` (slowest photo's mean). The
  baseline they are read against is the previous detector's `bench detect` (README), run
  on the same 5 photos at 1024 px.
- 8K: t1.jpg upscaled (bicubic) to a 7680 px long side, detected once: ``ms_8k``, the peak
  RSS right after it (``rss_after_8k_mb``; ``peak_rss_mb`` covers the whole run) and
  ``err_8k_px``: per face, the median distance (original photo pixels) between its 478
  points found on the 8K copy and mapped back and those found on the original; the worst face.

Prints a human summary, then as the last line one JSON object.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time

import numpy as np

LONG_SIDE = 1024
EIGHT_K = 7680
#: Annotated photos (by name) timed at 1024 px.
TIMED = ("astronaut", "grace_hopper", "t1", "bus", "zidane")
STAGES = ("ms_person", "ms_face", "ms_outline", "ms_pose", "ms_total")


def pin_one_core() -> str:
    """Restrict this process to one CPU (and torch / OpenCV to one thread); returns what was done."""
    from detectors.runtime import pin_threads

    pinned = "no sched_setaffinity"
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        pinned = f"cpu {core}"
    pin_threads()
    return pinned


def run(repeat: int = 5) -> dict[str, float]:
    """Run the benchmark, print the summary and the JSON line, return the JSON object."""
    pinned = pin_one_core()
    import cv2

    from detectors.evaluation import Score, load_annotations, score_faces, score_poses
    from detectors.portrait import PortraitDetector
    from pipeline.imageio import load_image

    annotations = {a.name: a for a in load_annotations()}
    start = time.perf_counter()
    detector = PortraitDetector()
    detector.load()
    ms_load = 1e3 * (time.perf_counter() - start)

    total = Score()
    for name, annotation in annotations.items():
        record = detector.detect(load_image(annotation.file()))
        score = score_faces(
            annotation,
            np.array([f.box for f in record.faces]).reshape(-1, 4),
            np.array([f.landmarks[1, :2] for f in record.faces]).reshape(-1, 2),
        ) + score_poses(annotation, np.array([p.box for p in record.persons]).reshape(-1, 4),
                        [p.pose for p in record.persons])
        total = total + score
        print(f"{name:13s} faces {len(record.faces)} (dropped {len(record.dropped_faces)}) persons "
              f"{len(record.persons)}  tp/fp/fn {score.true_positives}/{score.false_positives}/"
              f"{score.false_negatives}  joints ok {score.joints_ok}/{score.joints}")

    rows = []
    for name in TIMED:
        rgb = load_image(annotations[name].file())
        factor = LONG_SIDE / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
        record = detector.detect(rgb)  # warm-up
        timings = [detector.detect_timed(rgb)[1] for _ in range(repeat)]
        row = {key: statistics.mean(getattr(t, key) for t in timings) for key in STAGES}
        rows.append(row)
        print(f"{name:13s} {rgb.shape[1]}x{rgb.shape[0]} persons {len(record.persons)} faces {len(record.faces)}  "
              + "  ".join(f"{key[3:]} {row[key]:6.1f}" for key in STAGES) + " ms")

    eight_k = _eight_k(detector, load_image(annotations["t1"].file()))
    detector.close()
    result: dict[str, float] = {
        "face_recall": round(total.recall, 4), "face_precision": round(total.precision, 4),
        "pose_ok_rate": round(total.pose_ok_rate, 4), "faces_required": total.true_positives + total.false_negatives,
        "faces_found": total.true_positives, "false_faces": total.false_positives, "joints": total.joints,
    }
    result.update({key: round(statistics.mean(r[key] for r in rows), 2) for key in STAGES})
    result["ms_total_max"] = round(max(r["ms_total"] for r in rows), 2)
    result["ms_load"] = round(ms_load, 1)
    result.update(eight_k)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["images"] = len(rows)
    result["repeat"] = repeat
    print(f"pinned to {pinned}, torch/OpenCV 1 thread; quality on {len(annotations)} annotated photos at their own "
          f"size; timings at long side {LONG_SIDE}, default config, {repeat} timed runs per photo after one warm-up")
    print(json.dumps(result))
    return result


def _eight_k(detector, rgb: np.ndarray) -> dict[str, float]:
    """Detect an upscaled copy of ``rgb`` with a 7680 px long side; time, RSS and mapping error."""
    import cv2

    factor = EIGHT_K / max(rgb.shape[:2])
    big = cv2.resize(rgb, (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor)), interpolation=cv2.INTER_CUBIC)
    fx, fy = big.shape[1] / rgb.shape[1], big.shape[0] / rgb.shape[0]
    start = time.perf_counter()
    record = detector.detect(big)
    ms = 1e3 * (time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reference = detector.detect(rgb)
    errors = []
    for face in record.faces:
        back = face.landmarks[:, :2].astype(np.float64)
        back = np.stack([(back[:, 0] + 0.5) / fx - 0.5, (back[:, 1] + 0.5) / fy - 0.5], axis=1)
        nearest = min(reference.faces, key=lambda f: float(np.hypot(*(f.landmarks[1, :2] - back[1]))), default=None)
        if nearest is not None:
            errors.append(float(np.median(np.hypot(*(nearest.landmarks[:, :2] - back).T))))
    print(f"8K: {big.shape[1]}x{big.shape[0]} in {ms:.0f} ms, faces {len(record.faces)} (original {len(reference.faces)}), "
          f"median point error per face vs the original, worst face: {max(errors, default=float('nan')):.2f} px")
    return {"ms_8k": round(ms, 1), "faces_8k": len(record.faces), "err_8k_px": round(max(errors, default=-1.0), 3),
            "rss_after_8k_mb": round(rss, 1)}

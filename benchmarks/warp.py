"""`mirrorset bench warp`: every catalog op, grid solver + remap vs the exact per-pixel solver.

Inputs are real: the astronaut photo with its detected face mesh (face and face-shape
ops) and a full-body person from ultralytics' bus.jpg with its pose (body ops), both
scaled so the long side is ``--size``. Everything runs on one core (OpenCV, BLAS and
OpenMP threads pinned to 1). Per op and direction (+100, -100):

- ``ms``: ``plan_chain`` for that single op (grid MLS solve, fold check, landmark
  carrying, edit region) plus ``field.apply`` (the remap of the op's box), median of
  ``--repeat`` runs;
- the error of the grid field against the same field solved at every pixel of its box
  with the textbook reference solver;
- ``dense_ms``: the classical approach, the exact solver at every pixel of the whole
  frame (measured once per op at +100 unless ``--dense-ops`` limits it).

The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def _scene(name: str, size: int):
    """(image RGB uint8, Landmarks) of a fixture scaled so its long side is ``size``."""
    from pipeline.sample_corpus import sample_paths
    from warps.landmarks import Landmarks

    record = json.loads((FIXTURES / f"landmarks_{name}.json").read_text())
    paths = {Path(p.path).name: p.path for p in sample_paths()}
    bgr = cv2.imread(str(paths[record["image"]]), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    scale = size / max(h, w)
    image = cv2.cvtColor(
        cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA),
        cv2.COLOR_BGR2RGB,
    )

    def scaled(key):
        value = record.get(key)
        return None if value is None else np.asarray(value, np.float64) * scale

    landmarks = Landmarks(
        face=scaled("face"),
        pose=scaled("pose"),
        pose_visibility=record.get("pose_visibility"),
        person_box=scaled("person_box"),
    )
    return image, landmarks


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _remap_ms(image: np.ndarray, repeat: int) -> float:
    h, w = image.shape[:2]
    map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x += 0.37  # a sub-pixel shift, so the remap really interpolates
    return _median_ms(lambda: cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR), repeat)


def run(size: int = 1024, repeat: int = 5, dense_ops: int | None = None) -> dict:
    from warps.catalog import CATALOG, OpCall
    from warps.chain import WarpSettings, plan_chain
    from warps.field import solve_backward_dense

    cv2.setNumThreads(1)
    settings = WarpSettings()
    scenes = {"face478": _scene("astronaut", size), "pose33": _scene("bus", size)}
    rows = []
    dense_times = []
    for index, name in enumerate(sorted(CATALOG)):
        spec = CATALOG[name]
        image, landmarks = scenes[spec.reads]
        shape = image.shape[:2]
        for strength in (100, -100):
            calls = [OpCall(name, strength)]
            plan = plan_chain(shape, landmarks, calls, settings=settings)
            ms = _median_ms(lambda: plan_chain(shape, landmarks, calls, settings=settings).field.apply(image), repeat)
            record = plan.records[0]
            src, dst = np.asarray(record.anchors_src), np.asarray(record.anchors_dst)
            reference = solve_backward_dense(
                shape, src, dst, kind=settings.mls_kind, alpha=settings.alpha, roi=plan.field.roi
            )
            (gx, gy), (rx, ry) = plan.field.displacement(), reference.displacement()
            err = np.hypot(gx - rx, gy - ry)
            rows.append(
                {
                    "op": name,
                    "strength": strength,
                    "applied_strength": record.applied_strength,
                    "clamped": record.clamped,
                    "ms": ms,
                    "roi": list(plan.field.roi),
                    "controls": int(len(src)),
                    "max_err_px": float(err.max()),
                    "p99_err_px": float(np.percentile(err, 99)),
                    "min_jacobian": plan.field.min_jacobian(),
                }
            )
            if strength > 0 and (dense_ops is None or index < dense_ops):
                full = (0, 0, shape[1], shape[0])
                start = time.perf_counter()
                solve_backward_dense(shape, src, dst, kind=settings.mls_kind, alpha=settings.alpha, roi=full)
                dense_times.append((time.perf_counter() - start) * 1e3)
    face_image = scenes["face478"][0]
    remap_ms = _remap_ms(face_image, max(repeat, 20))
    ms_per_op = statistics.median(r["ms"] for r in rows)
    dense_ms = statistics.median(dense_times)
    errors = [r["max_err_px"] for r in rows]
    return {
        "benchmark": "warp",
        "size": size,
        "threads": 1,
        "ops": len(CATALOG),
        "cases": len(rows),
        "grid_step": settings.grid_step,
        "ms_per_op": round(ms_per_op, 3),
        "ms_per_op_max": round(max(r["ms"] for r in rows), 3),
        "remap_ms": round(remap_ms, 3),
        "ratio_to_remap": round(ms_per_op / remap_ms, 3),
        "dense_ms_per_op": round(dense_ms, 1),
        "dense_ops_timed": len(dense_times),
        "speedup": round(dense_ms / ms_per_op, 1),
        "max_err_px": round(max(errors), 4),
        "p99_err_px": round(max(r["p99_err_px"] for r in rows), 4),
        "min_jacobian": round(min(r["min_jacobian"] for r in rows), 4),
        "folds": sum(1 for r in rows if r["min_jacobian"] <= 0 or r["clamped"]),
        "per_op": rows,
    }


def main(args) -> int:
    result = run(size=args.size, repeat=args.repeat, dense_ops=args.dense_ops)
    per_op = result.pop("per_op")
    if not args.json:
        print(f"{'op':24s} {'str':>5s} {'ms':>7s} {'max err':>8s} {'p99':>7s} {'min J':>6s} roi")
        for r in per_op:
            flag = " CLAMPED" if r["clamped"] else ""
            print(
                f"{r['op']:24s} {r['strength']:5d} {r['ms']:7.2f} {r['max_err_px']:8.3f} "
                f"{r['p99_err_px']:7.3f} {r['min_jacobian']:6.3f} {r['roi']}{flag}"
            )
        print(
            f"median op {result['ms_per_op']} ms vs bare full-frame remap {result['remap_ms']} ms "
            f"(ratio {result['ratio_to_remap']}); per-pixel solver {result['dense_ms_per_op']} ms "
            f"(speedup {result['speedup']}x); worst error {result['max_err_px']} px; folds {result['folds']}"
        )
    print(json.dumps(result, sort_keys=True))
    return 0

"""`mirrorset bench warp`: the liquify engine on the build's real path, against a per-pixel
solve and an independent reference. One core (OpenCV, BLAS and OpenMP threads pinned to 1).

Workloads (all on real photos and their detected landmarks, tests/fixtures):

1. **Simulated ops, real path.** Every usable face of the sample corpus, planned as the build
   plans it (pipeline.synthesis): photo scaled to the base frame (long side <= 1024), FFHQ
   alignment to the 1024^2 crop frame (inter-ocular ~256 px), each of the 8 simulated ops at
   +100 and -100. ``ms``: ``plan_chain`` in the crop frame (grid solve, clamping, landmark
   carrying) + ``reframe`` into the base frame (the paste-back) + ``apply`` (Lanczos, exact
   kept pixels) + the fold check (``jacobian``) + the edit region (``change_region``);
   median of ``--repeat`` runs, every one solving its ops (the solve caches of
   ``warps.chain`` are switched off).
   Baselines, timed in the same run: ``dense_ms``: the same path with the op's field solved
   at every pixel of the same box with the same fast (moment-form) MLS solver and the same
   weights (first ``--dense-cases`` cases; clamping off, the requested strength as planned);
   ``remap_ms``: one bare bilinear ``cv2.remap`` of the whole base frame.
2. **Errors.** ``ref_*``: the grid field against the textbook MLS solver (warps.mls,
   ``reference=True``), evaluated independently with no taper, falloff or hold, at a seeded
   sample of the pixels where the op's weight is 1 (within the falloff's inner radius and
   outside held regions): what the engine computes where it claims plain MLS. ``grid_*``
   (the old figure, renamed): the grid field against the same weights solved per pixel,
   i.e. grid error only. ``reframe_*``: the base-frame field against T^-1(MLS(T x)) on
   weight-1 pixels, T the crop alignment, with the textbook solver (reframing included).
   ``chain_*``: 2-3 op chains (seeded, two per face): the composed grid field against the
   textbook backward maps applied in turn (last op first) with the same controls, at
   pixels where each op's weight is exactly 1 or exactly 0.
3. **Professional body ops at full resolution.** bus.jpg upscaled ``--pro-scale`` times
   (default 4: 3240 x 4320, 14 MP) with its pose, outline and neighbours scaled; each body op
   at +100 and -100: plan + apply + fold check + region, against a bare full-frame bilinear
   remap of that photo.
4. **Reuse** (``chain_reuse``): every two-op chain of the 8 simulated ops at +-100 (112; each
   op comes first in several, as in the reference recipe's combinations) on the first sample
   face in its crop frame, ``plan_chain`` alone, with the solve caches of ``warps.chain`` off
   (``cold``) and on as the build runs them (``cached``, starting empty): seconds and solves.

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
CROP = 1024
#: Pixels per case at which the textbook reference is evaluated.
REFERENCE_SAMPLES = 4000


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _faces():
    """(name, base image, alignment, crop-frame Landmarks) of every usable sample face."""
    from pipeline.alignment import align_face
    from pipeline.imageio import load_image
    from pipeline.sample_corpus import sample_paths
    from pipeline.framing import photo_frame as base_frame
    from warps.landmarks import Landmarks

    record = json.loads((FIXTURES / "landmarks_faces.json").read_text())
    paths = {Path(p.path).name: p.path for p in sample_paths()}
    photos: dict[str, np.ndarray] = {}
    for entry in record["faces"]:
        photo = photos.setdefault(entry["image"], load_image(paths[entry["image"]]))
        base = base_frame(photo, CROP)
        points = base.from_photo(np.array(entry["face"]))
        alignment = align_face(points, CROP)
        yield f"{entry['image']}#{entry['face_index']}", base.image, alignment, Landmarks(face=alignment.to_crop(points))


def _paste(field, alignment, base):
    """The real path after planning: reframe, apply, fold check, region."""
    from warps.region import change_region

    pasted = field.reframe(alignment.matrix, base.shape[:2])
    after = pasted.apply(base)
    pasted.jacobian  # noqa: B018  (the fold check the build makes)
    change_region(base, after, pasted)
    return pasted


def _classify(anchors, pts: np.ndarray, roi) -> tuple[np.ndarray, np.ndarray]:
    """Masks over (N, 2) crop-frame points where an op's weight is exactly 1 (within the
    falloff's inner radius of a moving control, outside held regions) and exactly 0 (beyond
    its reach: the outer radius plus the 1.5 grid steps bilinear upsampling spans)."""
    from scipy.spatial import cKDTree

    moving = np.vstack([anchors.src[: anchors.moving], anchors.dst[: anchors.moving]])
    distance = cKDTree(moving).query(pts)[0]
    x0, y0, x1, y1 = roi
    one = distance <= anchors.falloff.inner
    one &= (pts[:, 0] >= x0) & (pts[:, 0] <= x1 - 1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1 - 1)
    if anchors.hold is not None and one.any():
        share = anchors.hold.weight(roi, moving)  # the engine's raster, over the op's box
        at = np.round(pts[one]).astype(int) - (x0, y0)
        one[one] = share[at[:, 1], at[:, 0]] >= 1.0
    return one, distance > anchors.falloff.outer + 12


def _roi_points(roi, rng: np.random.Generator, count: int) -> np.ndarray:
    x0, y0, x1, y1 = roi
    return np.stack([rng.integers(x0, x1, count), rng.integers(y0, y1, count)], axis=1).astype(np.float64)


def _errors(values: list[np.ndarray]) -> tuple[float, float]:
    err = np.concatenate(values) if values else np.zeros(1)
    return float(err.max()), float(np.percentile(err, 99))


def _simulated(repeat: int, dense_cases: int, rng: np.random.Generator) -> dict:
    from warps.catalog import CATALOG, OpCall, ops_for_subset
    from warps.chain import WarpSettings, plan_chain, sample_chain, solve_op
    from warps.mls import mls_points
    from warps.solve import solve_backward_dense

    settings = WarpSettings()
    rows, remaps = [], []
    ref_err, grid_err, reframe_err, chain_pixels = [], [], [], []
    chain_ms = []
    for face_name, base, alignment, landmarks in _faces():
        h, w = base.shape[:2]
        map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32) + 0.37, np.arange(h, dtype=np.float32))
        remaps.append(_median_ms(lambda: cv2.remap(base, map_x, map_y, cv2.INTER_LINEAR), max(repeat, 5)))
        for spec in ops_for_subset("simulated"):
            for strength in (100, -100):
                calls = [OpCall(spec.name, strength)]

                def real():
                    plan = plan_chain((CROP, CROP), landmarks, calls, settings=settings, window=True)
                    return plan, _paste(plan.field, alignment, base)

                plan, pasted = real()
                ms = _median_ms(real, repeat)
                (record,) = plan.records
                field, anchors = solve_op((CROP, CROP), spec, landmarks, record.applied_strength, settings, True)
                row = {"face": face_name, "op": spec.name, "strength": strength, "applied": record.applied_strength,
                       "clamp_reason": record.clamp_reason, "ms": round(ms, 2), "roi": list(field.roi),
                       "controls": len(anchors.src), **{k: v for k, v in zip(("folds", "min_j", "max_j"),
                                                                               vars(pasted.jacobian).values())}}  # fmt: skip
                # Independent reference: textbook MLS, no taper/falloff/hold, at weight-1 pixels.
                pts = _roi_points(field.roi, rng, 4 * REFERENCE_SAMPLES)
                pts = pts[_classify(anchors, pts, field.roi)[0]][:REFERENCE_SAMPLES]
                truth = mls_points(pts, anchors.dst, anchors.src, reference=True)
                ref_err.append(np.hypot(*(field.sample(pts) - truth).T))
                # Reframing: base pixels x against T^-1(MLS(T x)), T the crop alignment.
                linear, offset = alignment.matrix[:, :2], alignment.matrix[:, 2]
                base_pts = _roi_points(pasted.roi, rng, 4 * REFERENCE_SAMPLES)
                crop_pts = base_pts @ linear.T + offset
                one = _classify(anchors, crop_pts, field.roi)[0]
                expected = (mls_points(crop_pts[one], anchors.dst, anchors.src, reference=True) - offset) @ np.linalg.inv(linear).T
                reframe_err.append(np.hypot(*(pasted.sample(base_pts[one]) - expected).T))
                if len(rows) < dense_cases:
                    kw = dict(kind=settings.mls_kind, alpha=settings.alpha, window=True, falloff=anchors.falloff,
                              hold=anchors.hold, step=settings.grid_step)  # fmt: skip
                    dense = solve_backward_dense((CROP, CROP), anchors.src, anchors.dst, **kw)
                    row["dense_ms"] = round(_median_ms(
                        lambda: _paste(solve_backward_dense((CROP, CROP), anchors.src, anchors.dst, **kw), alignment, base),
                        1), 1)  # fmt: skip
                    row["grid_ms"] = round(_median_ms(
                        lambda: _paste(solve_op((CROP, CROP), spec, landmarks, record.applied_strength, settings, True)[0],
                                       alignment, base), repeat), 2)  # fmt: skip
                    (gx, gy), (dx, dy) = field.displacement(), dense.displacement()
                    grid_err.append(np.hypot(gx - dx, gy - dy).ravel())
                rows.append(row)
        # Chains: composed grid fields against sequential textbook evaluation.
        for _ in range(2):
            calls = sample_chain(rng, "simulated", min_ops=2, max_ops=3)
            plan = plan_chain((CROP, CROP), landmarks, calls, settings=settings, window=True)
            chain_ms.append(_median_ms(lambda: _paste(
                plan_chain((CROP, CROP), landmarks, calls, settings=settings, window=True).field, alignment, base), 1))
            current, ops = landmarks, []
            for call, record in zip(calls, plan.records):
                field, anchors = solve_op((CROP, CROP), CATALOG[call.name], current, record.applied_strength, settings, True)
                ops.append((anchors, field.roi))
                current = current.mapped(field.forward_points)  # op k+1 reads op k's output
            # Pixels where each op's weight is 1 or 0: the backward maps composed, last op first.
            pts = _roi_points(plan.field.roi, rng, 4 * REFERENCE_SAMPLES)
            at, ok = pts.copy(), np.ones(len(pts), bool)
            for anchors, roi in reversed(ops):
                one, zero = _classify(anchors, at, roi)
                ok &= one | zero
                at[one] = mls_points(at[one], anchors.dst, anchors.src, reference=True)
            chain_pixels.append(np.hypot(*(plan.field.sample(pts[ok]) - at[ok]).T))
    return {"rows": rows, "remap_ms": statistics.median(remaps), "ref": _errors(ref_err), "grid": _errors(grid_err),
            "reframe": _errors(reframe_err), "chain_pixels": _errors(chain_pixels),
            "chain_ms": statistics.median(chain_ms), "chains": len(chain_ms)}  # fmt: skip


def _professional(scale: int, repeat: int) -> dict:
    from pipeline.sample_corpus import sample_paths
    from warps.catalog import CATALOG, OpCall
    from warps.chain import plan_chain
    from warps.landmarks import Landmarks
    from warps.region import change_region

    record = json.loads((FIXTURES / "landmarks_bus.json").read_text())
    path = next(p.path for p in sample_paths() if Path(p.path).name == record["image"])
    small = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = small.shape[:2]
    photo = cv2.resize(small, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    landmarks = Landmarks.from_dict(record).mapped(lambda p: scale * (p + 0.5) - 0.5)
    map_x, map_y = np.meshgrid(np.arange(w * scale, dtype=np.float32) + 0.37, np.arange(h * scale, dtype=np.float32))
    remap_ms = _median_ms(lambda: cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR), repeat)
    rows = []
    for name in sorted(n for n, s in CATALOG.items() if s.reads == "pose33"):
        for strength in (100, -100):
            calls = [OpCall(name, strength)]

            def real():
                plan = plan_chain(photo.shape[:2], landmarks, calls)
                after = plan.field.apply(photo)
                plan.field.jacobian  # noqa: B018
                change_region(photo, after, plan.field)
                return plan

            plan = real()
            rows.append({"op": name, "strength": strength, "applied": plan.records[0].applied_strength,
                         "clamp_reason": plan.records[0].clamp_reason, "ms": round(_median_ms(real, repeat), 1),
                         "roi": list(plan.field.roi), "folds": plan.field.jacobian.fold_count})  # fmt: skip
    return {"size": [w * scale, h * scale], "remap_ms": remap_ms, "rows": rows}


def _reuse(build_caches: tuple[int, int]) -> dict:
    """Every two-op chain of the 8 simulated ops at +-100 (each op first in several, as in the
    reference recipe's combinations) on the first sample face in its 1024^2 crop frame, planned
    with the solve caches of ``warps.chain`` off and then on as the build runs them
    (``build_caches``: its field bytes and clamp count; starting empty): seconds and MLS solves
    of ``plan_chain``."""
    import itertools
    from collections import OrderedDict

    import warps.chain
    from warps.catalog import OpCall, ops_for_subset

    _, _, _, landmarks = next(_faces())
    names = [spec.name for spec in ops_for_subset("simulated")]
    chains = [[OpCall(a, sa), OpCall(b, sb)] for a, b in itertools.combinations(names, 2)
              for sa, sb in itertools.product((100, -100), repeat=2)]  # fmt: skip
    solve_op = warps.chain.solve_op
    result: dict = {"chains": len(chains)}
    try:
        for label, (field_bytes, clamps) in (("cold", (0, 0)), ("cached", build_caches)):
            solves = []
            warps.chain.SOLVED_CACHE_BYTES, warps.chain.CLAMP_CACHE_SIZE = field_bytes, clamps
            warps.chain._SOLVED, warps.chain._CLAMPS = OrderedDict(), {}
            warps.chain.solve_op = lambda *a, **k: solves.append(1) or solve_op(*a, **k)
            start = time.perf_counter()
            for calls in chains:
                warps.chain.plan_chain((CROP, CROP), landmarks, calls, window=True)
            result[f"{label}_s"] = round(time.perf_counter() - start, 2)
            result[f"{label}_solves"] = len(solves)
    finally:
        warps.chain.solve_op = solve_op
        warps.chain.SOLVED_CACHE_BYTES, warps.chain.CLAMP_CACHE_SIZE = 0, 0
    return result


def run(repeat: int = 3, dense_cases: int = 16, pro_scale: int = 4, seed: int = 0) -> dict:
    import warps.chain

    cv2.setNumThreads(1)
    # Every timed run solves its ops: the build's caches would answer the repeats from memory.
    build_caches = (warps.chain.SOLVED_CACHE_BYTES, warps.chain.CLAMP_CACHE_SIZE)
    warps.chain.SOLVED_CACHE_BYTES = 0
    warps.chain.CLAMP_CACHE_SIZE = 0
    rng = np.random.default_rng(seed)
    sim = _simulated(repeat, dense_cases, rng)
    pro = _professional(pro_scale, repeat)
    rows = sim["rows"]
    ms = statistics.median(r["ms"] for r in rows)
    dense = [r for r in rows if "dense_ms" in r]
    speedup = statistics.median(r["dense_ms"] / r["grid_ms"] for r in dense)
    pro_ms = statistics.median(r["ms"] for r in pro["rows"])
    return {
        "benchmark": "warp",
        "threads": 1,
        "cases": len(rows),
        "faces": len({r["face"] for r in rows}),
        "ms_per_op": round(ms, 2),
        "ms_per_op_p90": round(float(np.percentile([r["ms"] for r in rows], 90)), 2),
        "remap_ms": round(sim["remap_ms"], 3),
        "ratio_to_remap": round(ms / sim["remap_ms"], 2),
        "dense_cases": len(dense),
        "dense_speedup": round(speedup, 2),
        "clamped": sum(1 for r in rows if r["clamp_reason"]),
        "folds": sum(r["folds"] for r in rows),
        "min_jacobian": round(min(r["min_j"] for r in rows), 3),
        "max_jacobian": round(max(r["max_j"] for r in rows), 3),
        "ref_max_err_px": round(sim["ref"][0], 3),
        "ref_p99_err_px": round(sim["ref"][1], 3),
        "grid_max_err_px": round(sim["grid"][0], 3),
        "grid_p99_err_px": round(sim["grid"][1], 3),
        "reframe_max_err_px": round(sim["reframe"][0], 3),
        "reframe_p99_err_px": round(sim["reframe"][1], 3),
        "chains": sim["chains"],
        "chain_ms": round(sim["chain_ms"], 1),
        "chain_max_err_px": round(sim["chain_pixels"][0], 3),
        "chain_p99_err_px": round(sim["chain_pixels"][1], 3),
        "pro_size": pro["size"],
        "pro_ms_per_op": round(pro_ms, 1),
        "pro_remap_ms": round(pro["remap_ms"], 1),
        "pro_ratio_to_remap": round(pro_ms / pro["remap_ms"], 2),
        "chain_reuse": _reuse(build_caches),
        "per_op": rows,
        "pro_per_op": pro["rows"],
    }


def main(args) -> int:
    result = run(repeat=args.repeat, dense_cases=args.dense_cases, pro_scale=args.pro_scale)
    per_op, pro_rows = result.pop("per_op"), result.pop("pro_per_op")
    if not args.json:
        print(f"{'face':20s} {'op':18s} {'str':>5s} {'ms':>7s} {'dense':>7s} {'minJ':>6s} {'maxJ':>6s} clamp")
        for r in per_op:
            dense = f"{r['dense_ms']:7.0f}" if "dense_ms" in r else "      -"
            print(f"{r['face']:20s} {r['op']:18s} {r['strength']:5d} {r['ms']:7.1f} {dense} {r['min_j']:6.2f} "
                  f"{r['max_j']:6.2f} {r['clamp_reason'] or ''} {r['applied'] if r['clamp_reason'] else ''}")  # fmt: skip
        for r in pro_rows:
            print(f"{'bus x' + str(args.pro_scale):20s} {r['op']:18s} {r['strength']:5d} {r['ms']:7.1f} "
                  f"{r['clamp_reason'] or ''} {r['applied'] if r['clamp_reason'] else ''}")  # fmt: skip
        print(
            f"real path median {result['ms_per_op']} ms per op vs bare base-frame remap {result['remap_ms']} ms "
            f"(ratio {result['ratio_to_remap']}); per-pixel solve of the same box {result['dense_speedup']}x slower; "
            f"error vs textbook MLS {result['ref_max_err_px']} px (p99 {result['ref_p99_err_px']}); "
            f"pro body ops {result['pro_ms_per_op']} ms at {result['pro_size']} vs remap {result['pro_remap_ms']} ms"
        )
    print(json.dumps(result, sort_keys=True))
    return 0

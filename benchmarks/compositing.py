"""`mirrorset bench compositing`: our composed multi-op edits vs the reference's compositing.

The reference (MirrorPPR) makes a multi-op target by rendering each op alone on the photo and
pasting each render into the result through its difference mask (pixels where that render
differs from the photo). mirrorset composes the ops' fields into one field and resamples once
(``warps.chain.plan_chain``), keeping a per-op mask of each op's own pixels.

For each photo's face and each multi-op chain (pairs of ops, both signs, ops that touch
neighbouring features), both results are computed on the full photo and compared:

- ``differing_share``: share of the union region where the two results differ by more than 8
  levels (any channel);
- ``mean_abs_diff``: mean |ours - composited| over the union region (8-bit levels);
- ``landmark_gap_px``: for every moving landmark of every op, the distance between where the
  composed field puts it and where the reference's composite shows it (tracked by dense flow
  from the photo), p95 over landmarks; ``composite_lost_share``: share of those landmarks the
  composite leaves more than 1 px short of the planned motion (an op pasted later overwrote
  an earlier op's pixels, or a difference mask cut an op's motion off);
- ``ours_landmark_gap_px``: the control: the same flow tracking on our composed result, so
  the tracker's own error is known.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

CHAINS = (
    (("eye_size", 100), ("eye_distance", 100)),
    (("nose_length", 100), ("mouth_vertical", -100)),
    (("mouth_width", 100), ("lip_thickness", 100)),
    (("nasal_alae", -100), ("nose_bridge_width", 100)),
    (("eye_size", -100), ("brow_height", 100)),
)
PHOTOS = ("astronaut", "grace_hopper", "zidane")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON line")


def run(args: argparse.Namespace) -> int:
    result = measure()
    if not args.json:
        for key, value in sorted(result.items()):
            print(f"{key}: {value}")
    print(json.dumps(result, sort_keys=True))
    return 0


def composite_reference(photo: np.ndarray, renders: list[np.ndarray]) -> np.ndarray:
    """The reference's multi-op target: each single-op render pasted in order through its
    difference mask (pixels where it differs from the photo)."""
    out = photo.copy()
    for render in renders:
        changed = np.any(render != photo, axis=2)
        out[changed] = render[changed]
    return out


def measure() -> dict[str, Any]:
    from pipeline.config import MirrorsetConfig
    from detectors.runtime import load_portrait_detector
    from pipeline.fidelity_geometry import track_points
    from pipeline.imageio import load_image
    from pipeline.sample_corpus import sample_paths
    from warps.catalog import CATALOG, OpCall, op_anchors
    from warps.chain import plan_chain
    from warps.landmarks import Landmarks

    config = MirrorsetConfig()
    paths = {p.name: p.path for p in sample_paths()}
    detector = load_portrait_detector(config.detector, config.gates)
    rows = []
    try:
        for name in PHOTOS:
            photo = load_image(paths[name])
            detections = detector.detect(photo)
            for face_index in detections.usable_faces():
                face = detections.faces[face_index].landmarks[:, :2].astype(np.float64)
                landmarks = Landmarks(face=face)
                for chain in CHAINS:
                    calls = [OpCall(op, s) for op, s in chain]
                    ours = plan_chain(photo.shape[:2], landmarks, calls)
                    renders = [plan_chain(photo.shape[:2], landmarks, [c]).field.apply(photo) for c in calls]
                    mine = ours.field.apply(photo)
                    theirs = composite_reference(photo, renders)
                    union = np.any(mine != photo, axis=2) | np.any(theirs != photo, axis=2)
                    diff = np.abs(mine.astype(np.int16) - theirs.astype(np.int16))
                    moving = np.unique(np.concatenate([
                        op_anchors(CATALOG[op], landmarks, s).src[: op_anchors(CATALOG[op], landmarks, s).moving]
                        for op, s in chain
                    ]), axis=0)  # fmt: skip
                    planned = ours.field.forward_points(moving)
                    shown = track_points(photo, theirs, moving)
                    gap = np.hypot(*(shown - planned).T)
                    control = np.hypot(*(track_points(photo, mine, moving) - planned).T)
                    rows.append({
                        "photo": name, "chain": "+".join(f"{op}{s:+d}" for op, s in chain),
                        "differing_share": float((diff.max(axis=2)[union] > 8).mean()) if union.any() else 0.0,
                        "mean_abs_diff": float(diff[union].mean()) if union.any() else 0.0,
                        "landmark_gap_px": float(np.percentile(gap, 95)),
                        "composite_lost_share": float((gap > 1.0).mean()),
                        "ours_landmark_gap_px": float(np.percentile(control, 95)),
                    })  # fmt: skip
    finally:
        detector.close()
    keys = ("differing_share", "mean_abs_diff", "landmark_gap_px", "composite_lost_share", "ours_landmark_gap_px")
    summary = {key: float(np.median([r[key] for r in rows])) for key in keys}
    return {"cases": len(rows), "median": summary, "worst_landmark_gap_px": max(r["landmark_gap_px"] for r in rows), "rows": rows}

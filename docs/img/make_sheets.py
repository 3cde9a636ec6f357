"""Contact sheets of the liquify engine: before | after | 4x |after - before| | edit mask.

    .venv/bin/python docs/img/make_sheets.py CHECKOUT OUT_DIR TAG

imports the engine from the checkout at CHECKOUT (e.g. this one, or ``git archive`` of an
older commit unpacked elsewhere) and writes, under OUT_DIR:

- ``sim_<op>_<TAG>.jpg``: the 8 simulated ops at +100 and -100 on three real faces, planned
  as the build plans them (base frame, 1024^2 FFHQ crop frame, pasted back); the mask is
  the engine's edit region (``change_region`` when the checkout has it, else the old
  displacement > 0.5 px region); in the mask panel, white = changed pixels inside the
  mask, red = changed pixels (by more than 2 levels) outside it;
- ``body_{pos,neg}_<TAG>.jpg``: the 5 body ops at +100 / -100 on bus.jpg (fixture
  landmarks; outline and neighbours where the engine reads them);
- ``shoulders_<TAG>.jpg``: the two shoulder ops at +100 and -100 on astronaut (fixture
  landmarks with the face mesh), which move the shoulders under the chin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CHECKOUT, OUT, TAG = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), sys.argv[3]
sys.path.insert(0, str(CHECKOUT))
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.alignment import align_face  # noqa: E402
from pipeline.imageio import load_image  # noqa: E402
from pipeline.sample_corpus import sample_paths  # noqa: E402
from pipeline.framing import photo_frame as base_frame  # noqa: E402
from warps.catalog import OpCall, ops_for_subset  # noqa: E402
from warps.chain import plan_chain  # noqa: E402
from warps.landmarks import Landmarks  # noqa: E402

FACES = ("astronaut.png#0", "grace_hopper.jpg#0", "t1.jpg#3")
PANEL = 200


def region_mask(before: np.ndarray, after: np.ndarray, field, plan) -> np.ndarray:
    try:
        from warps.region import change_region
    except ImportError:  # the engine before issue 9: displacement > 0.5 px
        from warps.region import edit_region

        return edit_region(field, threshold_px=0.5).mask
    return change_region(before, after, field).mask


def panels(before, after, mask, size) -> np.ndarray:
    diff = np.abs(after.astype(int) - before.astype(int))
    changed = diff.max(axis=2) > 2
    shown = np.dstack([mask // 2] * 3).astype(np.uint8)
    shown[changed & (mask == 0)] = (255, 0, 0)
    shown[changed & (mask > 0)] = (255, 255, 255)
    images = (before, after, np.clip(4 * diff, 0, 255).astype(np.uint8), shown)
    return np.hstack([np.pad(cv2.resize(p, size, interpolation=cv2.INTER_AREA if p.shape[1] > size[0] else cv2.INTER_NEAREST),
                             ((2, 2), (2, 2), (0, 0)), constant_values=255) for p in images])  # fmt: skip


def title(sheet: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((24, sheet.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, sheet])


def write(name: str, sheet: np.ndarray) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT / name), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def simulated() -> None:
    record = json.loads((FIXTURES / "landmarks_faces.json").read_text())
    paths = {Path(p.path).name: p.path for p in sample_paths()}
    faces = []
    for entry in record["faces"]:
        if f"{entry['image']}#{entry['face_index']}" in FACES:
            base = base_frame(load_image(paths[entry["image"]]), 1024)
            points = base.from_photo(np.array(entry["face"]))
            faces.append((entry["image"].split(".")[0], base.image, align_face(points, 1024), points))
    for spec in ops_for_subset("simulated"):
        rows = []
        for label, image, alignment, points in faces:
            for strength in (100, -100):
                landmarks = Landmarks(face=alignment.to_crop(points))
                plan = plan_chain((1024, 1024), landmarks, [OpCall(spec.name, strength)], window=True)
                field = plan.field.reframe(alignment.matrix, image.shape[:2])
                after = field.apply(image)
                mask = region_mask(image, after, field, plan)
                cx, cy = points.mean(axis=0)
                half = int(0.75 * max(np.ptp(points[:, 0]), np.ptp(points[:, 1])))
                x0, y0 = max(int(cx) - half, 0), max(int(cy) - half, 0)
                side = min(2 * half, image.shape[1] - x0, image.shape[0] - y0)
                box = (slice(y0, y0 + side), slice(x0, x0 + side))
                row = panels(image[box], after[box], mask[box], (PANEL, PANEL))
                applied = plan.records[0].applied_strength
                note = f"{label} {strength:+d}" + (f" (clamped to {applied:+d})" if applied != strength else "")
                cv2.putText(row, note, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
                rows.append(row)
        write(f"sim_{spec.name}_{TAG}.jpg", title(np.vstack(rows), f"{spec.name} ({TAG}): before | after | 4x diff | "
                                                   "mask (white: changed inside, red: changed outside)"))  # fmt: skip


def body() -> None:
    record = json.loads((FIXTURES / "landmarks_bus.json").read_text())
    path = next(p.path for p in sample_paths() if Path(p.path).name == record["image"])
    image = load_image(path)
    landmarks = Landmarks.from_dict(record)
    box = (slice(340, 960), slice(0, 420))
    for sign, strength in (("pos", 100), ("neg", -100)):
        rows = []
        for name in ("square_shoulders", "shoulder_width", "arm_slimming", "leg_length", "waist_slimming"):
            plan = plan_chain(image.shape[:2], landmarks, [OpCall(name, strength)])
            after = plan.field.apply(image)
            row = panels(image[box], after[box], region_mask(image, after, plan.field, plan)[box], (168, 248))
            cv2.putText(row, f"{name} {plan.records[0].applied_strength:+d}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                        (255, 255, 0), 1, cv2.LINE_AA)  # fmt: skip
            rows.append(row)
        write(f"body_{sign}_{TAG}.jpg", title(np.vstack(rows), f"body ops {strength:+d} on bus.jpg ({TAG}): "
                                               "before | after | 4x diff | mask"))  # fmt: skip


def shoulders() -> None:
    record = json.loads((FIXTURES / "landmarks_astronaut.json").read_text())
    path = next(p.path for p in sample_paths() if Path(p.path).name == record["image"])
    image = load_image(path)
    landmarks = Landmarks.from_dict(record)
    rows = []
    for name in ("square_shoulders", "shoulder_width"):
        for strength in (100, -100):
            plan = plan_chain(image.shape[:2], landmarks, [OpCall(name, strength)])
            after = plan.field.apply(image)
            row = panels(image, after, region_mask(image, after, plan.field, plan), (256, 256))
            cv2.putText(row, f"{name} {plan.records[0].applied_strength:+d}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                        (255, 255, 0), 1, cv2.LINE_AA)  # fmt: skip
            rows.append(row)
    write(f"shoulders_{TAG}.jpg", title(np.vstack(rows), f"shoulder ops on astronaut ({TAG}): "
                                        "before | after | 4x diff | mask"))  # fmt: skip


if __name__ == "__main__":
    simulated()
    body()
    shoulders()

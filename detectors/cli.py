"""CLI commands of the `detectors` package (registered by pipeline.cli): `detect` and `bench detect`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detectors.records import PortraitDetections


def register(sub: argparse._SubParsersAction) -> None:
    """Add `mirrorset detect IMAGE... [--json] [--draw OUT.png]`."""
    parser = sub.add_parser("detect", help="detect faces, persons, checked poses and outlines; print gate verdicts")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--json", action="store_true", help="print one JSON document per image (one per line)")
    parser.add_argument("--draw", metavar="OUT.png", help="render boxes and landmarks; several images get OUT-<i>.png")
    parser.add_argument("--weights", help="YOLO pose weights (default: the embedded yolo11n-pose.pt)")
    parser.add_argument("--detect-long-side", type=int, default=None, help="person detection long side (1024)")
    parser.add_argument("--policy", choices=("largest", "each", "reject"), default=None, help="people policy")
    parser.set_defaults(handler=_detect)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    """Add `mirrorset bench detect [--json] [--repeat N]`."""
    parser = bench_sub.add_parser("detect", help="face recall/precision and pose accuracy on annotated photos; per-stage latency on one core at "
                                    "1024 px; an 8K photo; load time, peak RSS")
    parser.add_argument("--json", action="store_true", help="accepted for symmetry; the last line is always JSON")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per image after one warm-up")
    parser.set_defaults(handler=_bench)


def _detect(args: argparse.Namespace) -> int:
    import dataclasses

    import cv2

    from detectors.config import DetectorConfig, GateConfig
    from detectors.draw import render
    from detectors.runtime import load_portrait_detector
    from manifests.storage import write_file
    from pipeline.imageio import ImageRejected, load_image

    config = DetectorConfig()
    if args.weights is not None:
        config = dataclasses.replace(config, weights=args.weights)
    if args.detect_long_side is not None:
        config = dataclasses.replace(config, detect_long_side=args.detect_long_side)
    gate_config = GateConfig() if args.policy is None else GateConfig(people_policy=args.policy)
    failures = 0
    detector = load_portrait_detector(config, gate_config)
    try:
        for index, path in enumerate(args.images):
            try:
                rgb = load_image(path)
            except (ImageRejected, OSError) as exc:
                print(f"{path}: rejected: {exc}", file=sys.stderr)
                failures += 1
                continue
            record = detector.detect(rgb)
            if args.json:
                print(json.dumps({"image": str(path), **record.to_json()}))
            else:
                print(_summary(path, record))
            if args.draw:
                out = Path(args.draw)
                if len(args.images) > 1:
                    out = out.with_name(f"{out.stem}-{index}{out.suffix}")
                ok, encoded = cv2.imencode(out.suffix or ".png", cv2.cvtColor(render(rgb, record), cv2.COLOR_RGB2BGR))
                if not ok:
                    raise ValueError(f"cannot encode drawing as {out.suffix!r}")
                write_file(out, encoded.tobytes())
    finally:
        detector.close()
    return 1 if failures else 0


def _summary(path: str, record: PortraitDetections) -> str:
    lines = [f"{path}: {record.image_size[0]}x{record.image_size[1]} scale {record.scale:.3f} "
             f"persons {len(record.persons)} faces {len(record.faces)} poses {len(record.poses)} "
             f"-> {record.reject_reason() or 'accepted'} (usable faces {list(record.usable_faces())})"]
    for j, person in enumerate(record.persons):
        agreement = "-" if person.pose_agreement is None else f"{person.pose_agreement:.2f}"
        lines.append(f"  person {j} {person.origin} score {person.score:.2f} pose {person.pose_source} "
                     f"({person.pose_check}, agreement {agreement}) outline {len(person.outline)} points")
    for i, face in enumerate(record.faces):
        failed = [v.code for v in face.verdicts if not v.passed]
        lines.append(f"  face {i} person {face.person_index} yaw {face.yaw:+.1f} pitch {face.pitch:+.1f} "
                     f"roll {face.roll:+.1f} iod {face.inter_ocular:.1f}px failed {failed or 'none'}")
    for dropped in record.dropped_faces:
        lines.append(f"  dropped face at {[round(float(v)) for v in dropped.box]} score {dropped.score:.2f}: {dropped.reason}")
    return "\n".join(lines)


def _bench(args: argparse.Namespace) -> int:
    from benchmarks.detect import run

    run(repeat=args.repeat)
    return 0

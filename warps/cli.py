"""CLI commands of the `warps` package (registered by pipeline.cli).

- ``mirrorset ops [--subset S] [--json]``: the operation catalog.
- ``mirrorset warp IMAGE --landmarks FILE --op NAME --strength S [...] --out OUT``: plan a
  chain on a photo with landmarks in the fixture JSON layout (warps.landmarks.Landmarks.from_dict)
  and write the *after* image (same size as IMAGE), optionally the edit region (changed or
  moved pixels, warps.region.change_region) as a PNG mask.
- ``mirrorset bench warp``: benchmarks.warp.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands."""
    ops = sub.add_parser("ops", help="list the liquify operations of the catalog")
    ops.add_argument("--subset", choices=("simulated", "professional"), help="only this subset")
    ops.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    ops.set_defaults(handler=_ops)

    warp = sub.add_parser("warp", help="apply a chain of ops to one photo and write the after image")
    warp.add_argument("image", type=Path, help="input photo")
    warp.add_argument("--landmarks", type=Path, required=True,
                      help="JSON with face / pose / pose_visibility / person_box in IMAGE's pixels")  # fmt: skip
    warp.add_argument("--op", action="append", required=True, dest="ops", help="op name (repeatable)")
    warp.add_argument("--strength", action="append", required=True, type=int, dest="strengths",
                      help="integer in [-100, 100], one per --op, in the same order")  # fmt: skip
    warp.add_argument("--out", type=Path, required=True, help="after image (.jpg: JPEG q95, .png)")
    warp.add_argument("--region", type=Path, help="also write the edit-region mask (PNG, 0/255)")
    warp.set_defaults(handler=_warp)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    """Add `mirrorset bench warp`."""
    bench = bench_sub.add_parser("warp", help="the liquify engine on the build's real path: cost and accuracy")
    bench.add_argument("--repeat", type=int, default=3, help="timed runs per case (median)")
    bench.add_argument("--dense-cases", type=int, default=16,
                       help="time the per-pixel solve of the same box on the first N cases")  # fmt: skip
    bench.add_argument("--pro-scale", type=int, default=4,
                       help="upscale bus.jpg by this factor for the full-resolution body ops")  # fmt: skip
    bench.add_argument("--json", action="store_true", help="print only the JSON line")
    bench.set_defaults(handler=_bench)


def op_rows(subset: str | None) -> list[dict]:
    """One plain dict per catalog op (optionally of one subset)."""
    from warps.catalog import CATALOG, ops_for_subset

    specs = CATALOG.values() if subset is None else ops_for_subset(subset)
    return [
        {
            "name": s.name,
            "group": s.group,
            "subsets": list(s.subsets),
            "reads": s.reads,
            "moves": list(s.moves),
            "magnitude_pos": s.magnitude_pos,
            "magnitude_neg": s.magnitude_neg,
            "description": s.description,
        }
        for s in specs
    ]


def _ops(args: argparse.Namespace) -> int:
    rows = op_rows(args.subset)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'name':18s} {'group':10s} {'reads':8s} {'+100':>5s} {'-100':>5s}  subsets / description")
    for r in rows:
        print(
            f"{r['name']:18s} {r['group']:10s} {r['reads']:8s} {r['magnitude_pos']:5.2f} "
            f"{r['magnitude_neg']:5.2f}  {','.join(r['subsets'])}: {r['description']}"
        )
    return 0


def _warp(args: argparse.Namespace) -> int:
    from manifests.storage import write_file
    from pipeline.imageio import encode_jpeg, encode_png, load_image
    from warps.catalog import OpCall
    from warps.chain import plan_chain
    from warps.landmarks import Landmarks
    from warps.region import change_region

    if len(args.ops) != len(args.strengths):
        raise SystemExit(f"mirrorset warp: {len(args.ops)} --op but {len(args.strengths)} --strength")
    if args.out.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        raise SystemExit(f"mirrorset warp: --out must end in .jpg, .jpeg or .png, got {args.out}")
    if args.region is not None and args.region.suffix.lower() != ".png":
        raise SystemExit(f"mirrorset warp: --region must end in .png, got {args.region}")
    calls = [OpCall(name, strength) for name, strength in zip(args.ops, args.strengths)]
    image = load_image(args.image)
    landmarks = Landmarks.from_dict(json.loads(args.landmarks.read_text()))
    plan = plan_chain(image.shape[:2], landmarks, calls)
    after = plan.field.apply(image)
    data = encode_png(after) if args.out.suffix.lower() == ".png" else encode_jpeg(after, 95)
    write_file(args.out, data)
    if args.region is not None:
        write_file(args.region, encode_png(change_region(image, after, plan.field).mask))
    for record in plan.records:
        note = f" (clamped: {record.clamp_reason})" if record.clamped else ""
        print(f"{record.name}: strength {record.applied_strength}/{record.requested_strength}{note}, "
              f"Jacobian {record.min_jacobian:.3f}..{record.max_jacobian:.3f}")  # fmt: skip
    print(f"wrote {args.out}" + (f" and {args.region}" if args.region else ""))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from benchmarks import warp

    return warp.main(args)



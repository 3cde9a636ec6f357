"""`mirrorset bench framing`: how large faces and edits are in the simulated pairs, per framing.

Builds the simulated subset of the built-in sample photos twice from one ingest + detection
(not timed): with ``simulated.framing.base: photo`` (the whole photo scaled, never up, to a
1024 px long side: the pre-v2 framing) and with the default ``base: face`` (a face-centred frame
whose inter-ocular distance is drawn from 100-200 px). Per build it reports the pairs, the
faces that gave pairs, the distribution of ``face_iod_px`` (each pair's inter-ocular distance
in its own pixels) and, per op, the median ``max_disp_px`` (the largest displacement of the
edit in the pair's pixels) over the pairs whose chain holds the op, plus the reject reasons.
``--sheet PATH`` writes a contact sheet of one group photo's pairs (insightface's t1.jpg, six
people) under the face framing. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sheet", help="write t1.jpg's pairs (a group of six; face framing) as a contact sheet PNG here")
    parser.add_argument("--keep", help="keep both builds in this folder")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")


def run(args: argparse.Namespace) -> int:
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mirrorset-framing-"))
    try:
        result = measure(root, args.sheet)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not args.json:
        for base, r in result.items():
            iod = r["face_iod_px"]
            print(f"base {base}: {r['pairs']} pairs from {r['faces']} faces; face_iod_px min {iod['p0']:.0f}, "
                  f"p25 {iod['p25']:.0f}, median {iod['p50']:.0f}, max {iod['p100']:.0f}")  # fmt: skip
            print("  median max_disp_px per op: " + ", ".join(f"{k} {v:.1f}" for k, v in r["max_disp_px_by_op"].items()))
            print("  rejects: " + ", ".join(f"{k} {v}" for k, v in r["rejects"].items()))
    print(json.dumps(result, sort_keys=True))
    return 0


def measure(root: Path, sheet: str | None) -> dict[str, Any]:
    import pandas as pd

    from manifests.preview import write_preview
    from pipeline.build import build
    from pipeline.config import MirrorsetConfig, with_overrides

    config = MirrorsetConfig()
    prepared = root / "prepared"
    build("sample", str(prepared), config, subsets=[], progress=False)
    result = {}
    for base in ("photo", "face"):
        out = root / base
        shutil.copytree(prepared, out)
        build("sample", str(out), with_overrides(config, {"simulated.framing.base": base}), subsets=["simulated"],
              progress=False)  # fmt: skip
        pairs = pd.read_parquet(out / "manifests" / "pairs")
        ops = pd.read_parquet(out / "manifests" / "pair_ops").merge(pairs[["pair_id", "max_disp_px"]], on="pair_id")
        rejects = pd.read_parquet(out / "manifests" / "rejects")
        rejects = rejects[rejects.stage != "ingest"]
        result[base] = {
            "pairs": len(pairs),
            "faces": int(pairs.groupby(["source_id", "face_index"]).ngroups),
            "face_iod_px": {f"p{q}": float(pairs.face_iod_px.quantile(q / 100)) for q in PERCENTILES},
            "max_disp_px_by_op": {name: float(v) for name, v in ops.groupby("name").max_disp_px.median().items()},
            "rejects": {str(k): int(v) for k, v in rejects.reason.value_counts().sort_index().items()},
        }
        if sheet and base == "face":
            sources = pd.read_parquet(out / "manifests" / "sources")
            group = sources[sources.path.str.endswith("t1.jpg")].source_id.iloc[0]
            write_preview(str(out), sheet, n=9, subset="simulated", source=group)
    return result

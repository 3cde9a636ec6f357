"""`mirrorset bench plan`: shard layout at reference scale, without rendering a pixel.

Plans the professional subset of ``--photos`` photos (default 3,789, the reference's count),
one person each with all 27 ops applicable, under a combo recipe (default the reference
recipe of params.yaml's comment: singles at 16 views, all pairs at 8 views, 26 triples at
8 views: 12,304 pairs per photo), with the real planner (``pipeline.plan``) and the default
shard sizing. Reports pairs per photo, shards, samples per shard, and the number of distinct
photos in every window of 10,000 consecutive samples (shard order, as a trainer streaming the
shards sees them): min and median. Also the time the planner itself takes.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

REFERENCE_COMBOS = ((1, 16, None), (2, 8, None), (3, 8, 26))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", type=int, default=3789)
    parser.add_argument("--edits-per-run", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")


def run(args: argparse.Namespace) -> int:
    result = measure(args.photos, args.edits_per_run)
    if not args.json:
        for key, value in sorted(result.items()):
            print(f"{key}: {value}")
    print(json.dumps(result, sort_keys=True))
    return 0


def measure(photos: int, edits_per_run: int, window: int = 10_000) -> dict[str, Any]:
    from math import comb

    from pipeline.config import MirrorsetConfig
    from pipeline.plan import Run, _interleave, _pack, samples_per_shard

    families = []
    for size, views, cap in REFERENCE_COMBOS:
        count = comb(27, size) * 2**size
        families.append((views, count if cap is None else min(cap, count)))
    pairs_per_photo = sum(v * n for v, n in families)
    start = time.perf_counter()
    persons = []
    for p in range(photos):
        runs, first = [], 0
        for views, count in families:
            for a in range(first, first + count, edits_per_run):
                runs.append(Run(f"{p:016x}", "", 0, 0, a, min(a + edits_per_run, first + count), views))
            first += count
        persons.append(runs)
    config = MirrorsetConfig()
    per_shard = samples_per_shard(config.output.shard_target_bytes, config.output.bytes_per_pixel,
                                  config.professional.augment.target_pixels)  # fmt: skip
    shards = _pack("professional", _interleave(persons), per_shard, 0)
    planning_s = time.perf_counter() - start
    stream = np.concatenate([
        np.repeat(int(r.source_id, 16), r.samples) for s in shards for r in s.runs
    ])  # fmt: skip
    distinct = [len(np.unique(stream[i : i + window])) for i in range(0, len(stream) - window + 1, window)]
    sizes = np.array([s.planned for s in shards])
    return {
        "photos": photos,
        "pairs_per_photo": pairs_per_photo,
        "pairs": int(len(stream)),
        "shards": len(shards),
        "samples_per_shard": per_shard,
        "short_shards": int((sizes < sizes.max()).sum()),
        "distinct_photos_per_10k_min": int(min(distinct)),
        "distinct_photos_per_10k_median": float(np.median(distinct)),
        "planning_s": round(planning_s, 2),
    }

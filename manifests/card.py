"""``mirrorset card ROOT``: the dataset card ``ROOT/README.md`` (Hugging Face format) and its plots.

The YAML header carries the licence, task category, size category, annotation creators and
one ``configs`` entry per subset pointing at its shards (the Hub's webdataset loader reads
them). The body is generated from the manifests (``manifests.stats``), ``config.json`` and
``dataset.json``: sources and licences, counts per subset, op and strength, reject reasons,
QA percentiles, how to load, a datasheet, and what a user must check about personal data.
Plots go to ``ROOT/plots/*.png`` (``manifests.plots``). Nothing depends on the time or on
where the root lives, so the same dataset gives the same card.
"""

from __future__ import annotations

from typing import Any

import yaml

from manifests.digests import file_sha256
from manifests.markers import read_markers
from manifests.schema import CONFIG_FILE, DATASET_FILE, SCHEMA_VERSION
from manifests.stats import DISTRIBUTION_COLUMNS, open_tables, stats
from manifests.storage import Store

CARD_FILE = "README.md"
_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))  # fmt: skip


def size_category(pairs: int) -> str:
    """The Hugging Face ``size_categories`` bucket of a dataset of ``pairs`` samples."""
    for bound, label in _SIZE_CATEGORIES:
        if pairs < bound:
            return label
    return "n>1T" if pairs >= 10**12 else "1B<n<10B"


def write_card(root: str | Store, *, name: str = "mirrorset") -> list[str]:
    """Commit ``README.md`` and the plots under ``root``; returns their paths relative to it."""
    from manifests.plots import write_plots

    store = root if isinstance(root, Store) else Store(root)
    summary = stats(store)
    if not summary["subsets"]:
        raise ValueError(f"{store.url} holds no pairs: nothing to describe")
    con, _ = open_tables(store)
    plots = write_plots(store, con, summary)
    con.close()
    store.write_bytes(CARD_FILE, card_text(store, summary, plots, name).encode("utf-8"))
    return [CARD_FILE, *plots]


def card_text(store: Store, summary: dict[str, Any], plots: list[str], name: str) -> str:
    """The whole card: YAML header and Markdown body."""
    config = store.read_json(CONFIG_FILE) or {}
    dataset = store.read_json(DATASET_FILE) or {}
    markers = {s: read_markers(store, s) for s in summary["subsets"]}
    shard_bytes = {s: sum(m["files"]["tar"]["bytes"] for m in markers[s].values()) for s in markers}
    sections = [
        _header(summary, name),
        _intro(summary, shard_bytes, name),
        _sources(store, config),
        _composition(summary),
        _rejects(summary),
        _qa(summary),
        _plots(plots),
        _loading(summary, {s: max(markers[s], default=0) for s in markers}),
        _datasheet(summary, config),
        _personal_data(),
        _reproduce(config, dataset),
    ]
    return "\n".join(sections)


def _header(summary: dict[str, Any], name: str) -> str:
    header = {
        "pretty_name": name,
        "license": "agpl-3.0",
        "task_categories": ["image-to-image"],
        "size_categories": [size_category(summary["pairs"])],
        "annotations_creators": ["machine-generated"],
        "source_datasets": ["original"],
        "tags": ["portrait-retouching", "image-editing", "paired-images", "webdataset", "croissant"],
        "configs": [
            {"config_name": subset, "data_files": [{"split": "train", "path": f"shards/{subset}/*.tar"}]}
            for subset in summary["subsets"]
        ],
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False, width=1000) + "---\n"


def _intro(summary: dict[str, Any], shard_bytes: dict[str, int], name: str) -> str:
    rows = [
        f"| {s} | {d['pairs']:,} | {d['groups']:,} | {d['photos']:,} | {d['shards']} | {shard_bytes[s] / 1e6:,.1f} MB |"
        for s, d in summary["subsets"].items()
    ]
    return f"""# {name}

Strictly aligned before/after pairs for exemplar-based structural portrait retouching, built by
the mirrorset pipeline. Each pair shows one real photo before and after a liquify edit (named
facial, face-shape or body ops at recorded strengths); every edit is rendered in several
self-augmented views, and each view applies the *same* spatial transform to before, after and the
masks, so any two views of one edit are exact exemplars of each other.

| subset | pairs | edits | photos | shards | shard bytes |
|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Layout (schema version {SCHEMA_VERSION}): WebDataset tar shards under `shards/<subset>/` (members
`<key>.before.jpg`, `<key>.after.jpg`, `<key>.mask.png`, `<key>.opmask.png`, `<key>.regions.png`,
`<key>.strength.png`, `<key>.json`), a
wids index per subset (`shards/<subset>/index.json`), Parquet manifests under `manifests/`
(`pairs`, `pair_ops`, `rejects`, `sources`, `detections`, `plan`), Croissant metadata in
`croissant.json`. Every column is described in the project's `docs/manifests.md`.
"""


def _sources(store: Store, config: dict[str, Any]) -> str:
    source = config.get("source")
    text = ["## Sources and licences", ""]
    if source == "sample":
        text += [
            "Built from the project's `sample` corpus: real photos that installed Python packages ship. They are",
            "credited below as the packages state; the pairs are derivatives of these photos, so the photos'",
            "terms apply to the pairs as well as this card's licence.",
            "",
            "| photo | source_id | pairs | credit and licence |",
            "|---|---|---:|---|",
            *_sample_rows(store),
        ]
    else:
        text += [
            f"Built from `{source}`. **The builder of this dataset must complete this section** before sharing it:",
            "who took the photos, who holds their rights, under which licence they may be used, modified and",
            "redistributed (the pairs are derivatives), and on which legal basis the people shown agreed to this",
            "use (see *Personal data* below).",
        ]
    text += [
        "",
        "The card's `license: agpl-3.0` is the licence of the code and models that made the pairs (mirrorset, and",
        "the Ultralytics assets and weights it uses). It does not grant rights in the source photos.",
        "",
    ]
    return "\n".join(text)


def _sample_rows(store: Store) -> list[str]:
    from pipeline.sample_corpus import sample_paths

    con, has = open_tables(store)
    per_photo = dict(con.execute("SELECT source_id, count(*) FROM pairs GROUP BY 1").fetchall()) if has["pairs"] else {}
    con.close()
    rows = []
    for photo in sample_paths():
        source_id = file_sha256(photo.path)[:16]
        rows.append(f"| {photo.name} | `{source_id}` | {per_photo.get(source_id, 0)} | {photo.credit} |")
    return rows


def _composition(summary: dict[str, Any]) -> str:
    text = ["## Composition", ""]
    for subset, d in summary["subsets"].items():
        buckets = sorted({b for op in d["ops"].values() for b in op["strength_buckets"]}, key=_bucket_key)
        text += [
            f"### {subset}",
            "",
            f"{d['pairs']:,} pairs of {d['groups']:,} edits of {d['photos']:,} photos in {d['shards']} shard(s); "
            f"splits {_inline(d['splits'])}; image formats {_inline(d['image_formats'])}; ops per pair "
            f"{_inline(d['ops_per_pair'])}; views per edit {_inline(d['views_per_group'])}. Op groups: "
            f"{_inline(d['op_groups'])}. Distinct photos per {d['photos_per_window']['window']:,} consecutive samples "
            f"(shard order): min {d['photos_per_window']['min']}, median {d['photos_per_window']['median']}.",
            "",
            "Pairs per op and applied strength (an op in a chain of several counts once per pair):",
            "",
            "| op | group | pairs | clamped | " + " | ".join(buckets) + " |",
            "|---|---|---:|---:|" + "---:|" * len(buckets),
        ]
        for op, c in d["ops"].items():
            cells = " | ".join(str(c["strength_buckets"].get(b, 0)) for b in buckets)
            text.append(f"| `{op}` | {c['group']} | {c['count']} | {c['clamped']} | {cells} |")
        text.append("")
    return "\n".join(text)


def _rejects(summary: dict[str, Any]) -> str:
    text = [
        "## Reject reasons",
        "",
        "Every photo, person, edit or view the pipeline left out has a row in `manifests/rejects` with its",
        "stage and reason code (docs/manifests.md lists the codes); nothing is dropped silently.",
        "",
        "| stage | reason | rows |",
        "|---|---|---:|",
    ]
    for stage, reasons in summary["rejects"].items():
        text += [f"| {stage} | `{reason}` | {n} |" for reason, n in reasons.items()]
    if not summary["rejects"]:
        text.append("| - | - | 0 |")
    return "\n".join(text) + "\n"


def _qa(summary: dict[str, Any]) -> str:
    text = [
        "## QA statistics",
        "",
        "Per-pair measurements in the pairs manifest (null where a build did not measure them), with the scale",
        "columns `face_iod_px` (inter-ocular distance in the pair's pixels) and `max_disp_px` (largest",
        "displacement of the edit in the pair's pixels). Percentiles over non-null values.",
        "",
    ]
    keys = ("count", "p1", "p5", "p25", "p50", "p75", "p95", "p99", "mean")
    for subset, d in summary["subsets"].items():
        text += [f"### {subset}", "", "| column | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for column in DISTRIBUTION_COLUMNS:
            dist = d["qa"][column]
            text.append(f"| `{column}` | " + " | ".join(_num(dist[k]) for k in keys) + " |")
        text += ["", f"`max_disp_px` per op ({subset}):", "", "| op | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for op, dist in d["max_disp_px_by_op"].items():
            text.append(f"| `{op}` | " + " | ".join(_num(dist[k]) for k in keys) + " |")
        text.append("")
    return "\n".join(text)


def _plots(plots: list[str]) -> str:
    titles = {"ops": "Pairs per op", "strengths": "Applied strengths", "qa": "QA and scale distributions"}
    lines = ["## Plots", ""]
    for rel in plots:
        stem = rel.rsplit("/", 1)[-1].removesuffix(".png")
        lines += [f"![{titles.get(stem, stem)}]({rel})", ""]
    return "\n".join(lines)


def _loading(summary: dict[str, Any], last_shard: dict[str, int]) -> str:
    subset = next(iter(summary["subsets"]))
    last = last_shard[subset]
    return f"""## How to load

`ROOT` is where this dataset lives (a folder, or an `s3://` / `gs://` URI with fsspec installed).

pandas (the `subset` column merges the files' and the folders' value into one categorical):

```python
import pandas as pd
pairs = pd.read_parquet("ROOT/manifests/pairs")
strong = pd.read_parquet("ROOT/manifests/pair_ops", filters=[("name", "==", "eye_size"), ("strength", ">", 50)])
pairs_of_strong = pairs[pairs.pair_id.isin(strong.pair_id)]
```

duckdb:

```sql
SELECT p.pair_id, p.shard, o.strength
FROM 'ROOT/manifests/pair_ops/*/*.parquet' o JOIN 'ROOT/manifests/pairs/*/*.parquet' p USING (pair_id)
WHERE o.name = 'eye_size' AND o.strength > 50;
```

webdataset (samples are `{{"__key__", "before.jpg", "after.jpg", "mask.png", "opmask.png", "regions.png", "strength.png", "json"}}`):

```python
import webdataset as wds
ds = wds.WebDataset("ROOT/shards/{subset}/{subset}-{{000000..{last:06d}}}.tar").decode("rgb")
```

wids (random access by index, per-shard counts from the index):

```python
import wids
ds = wids.ShardListDataset("ROOT/shards/{subset}/index.json")
sample = ds[0]
```

Hugging Face `datasets` (every subset is a config of this card):

```python
from datasets import load_dataset
ds = load_dataset("webdataset", data_files={{"train": "ROOT/shards/{subset}/*.tar"}}, split="train")
```

The card's configs put every shard in one `train` split because shards mix photos of all splits:
filter on the `split` field of the JSON record (or the pairs manifest) for train / val / test.
"""


def _datasheet(summary: dict[str, Any], config: dict[str, Any]) -> str:
    subsets = ", ".join(summary["subsets"])
    return f"""## Datasheet

**Motivation.** Exemplar-based retouching models learn an edit from a before/after example and apply
it to a new photo. They need pairs whose only difference is the edit, at known strengths, with
masks; retouchers' pairs are scarce and never strictly aligned. This dataset supplies such pairs
synthetically, so a model can learn geometry edits with exact supervision.

**Composition.** Subsets: {subsets}. One sample is one view of one edit: before and after images
of the same size, the edit region mask, a per-op mask (bit k set where op k moved the pixel), and
a JSON record with the op chain (requested and applied strengths), matrices, seeds, detector
models and code versions. Views of one edit share `group_id`; the same op chain on different
photos shares `recipe_id`. Counts are above; every column is in `docs/manifests.md`.

**Collection.** Photos come from the source named under *Sources*; nothing was scraped by the
pipeline. Persons, faces and poses were detected automatically; gates (face size, head pose,
blur, borders) decide which people are edited, and every exclusion is a reject row.

**Preprocessing.** Photos are decoded with EXIF orientation applied and checked (size, format,
duplicates by sha256). Edits are moving-least-squares warps planned from landmarks; views are
random crops, rotations and flips applied identically to before, after and masks; images are
encoded once (JPEG quality recorded, or lossless).

**Uses.** Training and evaluating structural retouching and controllable image-to-image models;
studying edit locality and strength control. Not for face recognition, attribute inference,
or producing deceptive images of real people.

**Distribution.** Shards and manifests as they are laid out here, with `croissant.json` and the
per-subset wids indexes; sha256 of every shard in the indexes, the markers and `croissant.json`.
Check integrity with `mirrorset verify ROOT` (writes a report; `--report PATH` for a read-only copy).

**Maintenance.** The dataset is a deterministic function of its sources and recorded config
(`config.json`, seed {config.get("groups", {}).get("simulated", {}).get("seed", "recorded")}): rebuilding gives the same bytes, and adding photos
appends shards without rewriting existing ones. Removing a photo (e.g. on request of the person
shown) means deleting it from the source and rebuilding into a fresh root: existing shards keep
every photo they planned.
"""


def _personal_data() -> str:
    return """## Personal data

**Portraits are personal data.** Every pair shows an identifiable person. Face landmarks, and any
face embedding computed from them (the `identity_sim` QA column uses one when measured), are
biometric data under laws such as the GDPR (Art. 9) when used to identify someone. Before you
build, share or train on this dataset, check:

- that you have a legal basis for processing every photo (for most uses: the informed consent of
  each person shown, or of a parent for a minor), and that the photos' licences allow modification
  and redistribution of derivatives;
- that no photo shows a minor, a person in a sensitive context, or special-category information
  (health, religion, ethnicity, sexual orientation) unless that basis covers it;
- that you can honour deletion requests: find a person's photos by `source_id` in
  `manifests/sources`, remove them from the source and rebuild into a fresh root (shards already
  built keep every photo they planned, and copies others made are out of your reach);
- that the dataset is not used to identify people, to infer attributes, or to make edited images of
  real people that could deceive or harm them; say so in any licence you add.

Retouching edits also encode beauty norms (e.g. slimming, eye enlargement). Models trained on them can
spread those norms; document the intended use.
"""


def _reproduce(config: dict[str, Any], dataset: dict[str, Any]) -> str:
    versions = dataset.get("versions") or {}
    listing = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    return f"""## Reproduce

`config.json` records the source and, per stage, the config its outputs were made with;
`dataset.json` records the counts and the versions that can change bytes ({listing or "not recorded"}).
Rebuilding with the same source, config and versions (`mirrorset build --source ... --out ...`) gives
byte-identical shards and manifests; `mirrorset verify` compares a copy with its markers.
"""


def _inline(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in counts.items()) or "none"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def _bucket_key(label: str) -> int:
    return 0 if label == "0" else int(label.split("..")[0])

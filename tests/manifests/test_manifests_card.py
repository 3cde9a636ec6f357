import glob
import hashlib
import itertools
import json

import cv2
import pandas as pd
import pytest
import yaml

from manifests.index import shard_index
from manifests.stats import stats
from manifests.storage import Store


def _header(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_card_header_points_each_subset_config_at_its_shards(example_root):
    text = (example_root / "README.md").read_text()
    header = _header(text)
    assert header["license"] == "agpl-3.0" and header["task_categories"] == ["image-to-image"]
    assert header["annotations_creators"] == ["machine-generated"] and header["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c["data_files"] for c in header["configs"]}
    assert set(configs) == {"simulated", "professional"}
    for subset, files in configs.items():
        matched = sorted(glob.glob(str(example_root / files[0]["path"])))
        assert matched == sorted(str(p) for p in (example_root / "shards" / subset).glob("*.tar")) and matched


def test_card_body_states_counts_sources_and_personal_data(example_root):
    text = (example_root / "README.md").read_text()
    summary = stats(str(example_root))
    for heading in ("## Sources and licences", "## Composition", "## Reject reasons", "## QA statistics",
                    "## How to load", "## Datasheet", "## Personal data", "**Motivation.**", "**Maintenance.**"):  # fmt: skip
        assert heading in text
    for subset, s in summary["subsets"].items():
        assert f"| {subset} | {s['pairs']:,} | {s['groups']:,} |" in text
        for name, op in s["ops"].items():
            assert f"| `{name}` | {op['group']} | {op['count']} | {op['clamped']} |" in text
    for stage, reasons in summary["rejects"].items():
        for reason, n in reasons.items():
            assert f"| {stage} | `{reason}` | {n} |" in text
    assert "NASA" in text and "Portraits are personal data" in text and "consent" in text
    for plot in ("plots/ops.png", "plots/strengths.png", "plots/qa.png"):
        assert f"]({plot})" in text
        image = cv2.imread(str(example_root / plot))
        assert image is not None and image.shape[0] > 200 and image.std() > 10


def test_croissant_validates_and_loads_the_pairs_records(example_root):
    import mlcroissant as mlc

    path = example_root / "croissant.json"
    metadata = json.loads(path.read_text())
    assert "http://mlcommons.org/croissant/1.1" in metadata["conformsTo"]
    assert metadata["rai:personalSensitiveInformation"] and metadata["rai:dataCollection"]
    tars = {d["contentUrl"]: d["sha256"] for d in metadata["distribution"] if d.get("encodingFormat") == "application/x-tar"}
    assert sorted(tars) == sorted(p.relative_to(example_root).as_posix() for p in example_root.glob("shards/*/*.tar"))
    for url, sha in tars.items():
        assert sha == hashlib.sha256((example_root / url).read_bytes()).hexdigest()
    dataset = mlc.Dataset(jsonld=str(path))  # raises on validation errors
    records = list(itertools.islice(dataset.records("pairs"), 3))
    pairs = pd.read_parquet(example_root / "manifests" / "pairs").set_index("pair_id")
    for record in records:
        row = pairs.loc[record["pairs/pair_id"].decode()]
        assert record["pairs/max_disp_px"] == pytest.approx(row.max_disp_px)
        assert [o["pairs/ops/name"].decode() for o in record["pairs/ops"]] == [o["name"] for o in row.ops]
        assert list(record["pairs/region_bbox"]) == list(row.region_bbox)


def test_croissant_validate_command_accepts_it(example_root):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mlcroissant.scripts.cli", "validate", "--jsonld",
                           str(example_root / "croissant.json")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_shard_index_matches_the_markers_and_loads_in_wids(example_root, tmp_path, monkeypatch):
    import wids

    store = Store(str(example_root))
    pairs = pd.read_parquet(example_root / "manifests" / "pairs")
    for subset in ("simulated", "professional"):
        index_path = example_root / "shards" / subset / "index.json"
        stored = json.loads(index_path.read_text())
        assert stored == shard_index(store, subset)
        monkeypatch.setenv("WIDS_CACHE", str(tmp_path / "wids"))
        dataset = wids.ShardListDataset(str(index_path), keep=True, transformations=[lambda sample: sample])
        mine = pairs[pairs.subset == subset]
        assert len(dataset) == len(mine)
        last = dataset[len(dataset) - 1]
        assert last["__key__"] == mine.key.iloc[-1]  # rows are in tar order
        assert hashlib.sha256(last[".after.jpg"].getvalue()).hexdigest() == mine.sha256_after.iloc[-1]


def test_datasets_loads_both_subsets_from_the_shards(example_root, tmp_path):
    from datasets import load_dataset

    pairs = pd.read_parquet(example_root / "manifests" / "pairs")
    for subset in ("simulated", "professional"):
        files = sorted(str(p) for p in (example_root / "shards" / subset).glob("*.tar"))
        loaded = load_dataset("webdataset", data_files={"train": files}, split="train",
                              cache_dir=str(tmp_path / "hf"))  # fmt: skip
        mine = pairs[pairs.subset == subset]
        assert loaded.num_rows == len(mine)
        assert set(loaded.column_names) >= {"__key__", "before.jpg", "after.jpg", "mask.png", "opmask.png", "json"}
        first = loaded[0]
        assert first["__key__"] == mine.key.iloc[0]
        assert first["json"]["pair_id"] == mine.pair_id.iloc[0]
        assert first["before.jpg"].size == (mine.width.iloc[0], mine.height.iloc[0])

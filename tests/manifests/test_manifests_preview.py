import cv2
import numpy as np
import pandas as pd
import pytest

from manifests.preview import _COLUMNS, _LABEL_H, _SMALL_H, label, select_pairs, write_preview
from manifests.storage import Store
from pipeline.cli import main


def test_selection_takes_one_view_per_edit_balancing_subsets_and_ops(example_root):
    store = Store(str(example_root))
    rows = select_pairs(store, 6)
    assert len({r["group_id"] for r in rows}) == 6
    assert [r["subset"] for r in rows].count("simulated") == 3
    chains = [(r["subset"], tuple(o["name"] for o in r["ops"])) for r in rows]
    assert len(set(chains)) == 6  # no chain twice within a subset
    only = select_pairs(store, 50, op="nose_length", subset="professional")
    pairs = pd.read_parquet(example_root / "manifests" / "pairs", filters=[("subset", "==", "professional")])
    holding = pairs[pairs.ops.map(lambda ops: "nose_length" in [o["name"] for o in ops])]
    assert len(only) == holding.group_id.nunique()
    assert all(r["subset"] == "professional" and "nose_length" in label(r) for r in only)


def test_sheet_rows_show_before_after_difference_and_mask(example_root, tmp_path):
    out = tmp_path / "sheet.png"
    cell = 128
    assert main(["preview", str(example_root), "--n", "3", "--cell", str(cell), "--out", str(out)]) == 0
    sheet = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    band = _LABEL_H + _SMALL_H
    assert sheet.shape == (_LABEL_H + 3 * (band + cell), len(_COLUMNS) * cell, 3)
    for r in range(3):
        top = _LABEL_H + r * (band + cell) + band
        before, after, heat, mask = (sheet[top : top + cell, k * cell : (k + 1) * cell] for k in range(4))
        assert np.abs(before.astype(int) - after).max() > 0  # the edit shows
        inside = mask.max(axis=2) > 127
        assert inside.any() and (~inside).any()
        # where the heat map is bright (|after - before| >= ~20), the mask covers it
        bright = heat.max(axis=2) > 80
        assert bright.any() and (bright & inside).sum() >= 0.9 * bright.sum()


def test_asking_for_an_op_no_pair_has_is_an_error(example_root, tmp_path):
    with pytest.raises(ValueError, match="no pairs with op arm_slimming"):
        write_preview(str(example_root), str(tmp_path / "x.png"), op="arm_slimming")


def test_source_keeps_the_pairs_of_one_photo(example_root, tmp_path):
    store = Store(str(example_root))
    pairs = pd.read_parquet(example_root / "manifests" / "pairs")
    source = pairs.source_id.value_counts().index[-1]  # the photo with the fewest pairs
    rows = select_pairs(store, 50, source=source)
    assert rows and {r["source_id"] for r in rows} == {source}
    assert len(rows) == pairs[pairs.source_id == source].group_id.nunique()
    with pytest.raises(ValueError, match="no pairs with source 0000"):
        write_preview(str(example_root), str(tmp_path / "x.png"), source="0000")

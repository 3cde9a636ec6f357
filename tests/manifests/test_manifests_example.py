"""docs/example must be what manifests.example makes of the example build today."""

from pathlib import Path

import pytest

from manifests.example import EXAMPLE_FILES, copy_example

DOCS_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example"


@pytest.mark.parametrize("rel", EXAMPLE_FILES)
def test_committed_example_is_not_stale(example_root, tmp_path, rel):
    fresh = tmp_path / "fresh"
    copy_example(str(example_root), fresh)
    committed = DOCS_EXAMPLE / rel
    assert committed.is_file(), f"{committed} is missing: run `python -m manifests.example`"
    assert committed.read_bytes() == (fresh / rel).read_bytes(), (
        f"docs/example/{rel} is stale: regenerate it with `python -m manifests.example`"
    )

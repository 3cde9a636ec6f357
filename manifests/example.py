"""The committed example under ``docs/example/``: what ``card``, ``croissant``, the shard index
and ``preview`` make of a small fixed build of the sample corpus.

``python -m manifests.example [DEST]`` builds :data:`EXAMPLE_BUILD` into a temporary root
and writes :data:`EXAMPLE_FILES` into ``DEST`` (default ``docs/example``). The build is
deterministic (same code and library versions, same bytes), and so is every file, so a test
regenerates them and fails when the committed copies are stale.

The build: the ``sample`` source, both subsets, one worker; the professional subset is shrunk
so the sample photos give it pairs quickly (three face ops, views of ~60,000 pixels).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

#: ``mirrorset build`` arguments of the example (``--out`` is added).
EXAMPLE_BUILD = (
    "build", "--source", "sample", "--subset", "all", "--workers", "1", "--quiet",
    "--set", "professional.min_pixels=20000",
    "--set", "professional.max_area_fraction=0.5",
    "--set", "professional.augment.target_pixels=60000",
    "--set", "professional.ops=[eye_size,nose_length,mouth_width]",
)  # fmt: skip

#: Preview settings of the example contact sheet.
PREVIEW_N, PREVIEW_CELL = 4, 144

#: Files of the example, relative to the dataset root and to ``docs/example``.
EXAMPLE_FILES = (
    "README.md",
    "croissant.json",
    "plots/ops.png",
    "plots/strengths.png",
    "plots/qa.png",
    "shards/simulated/index.json",
    "shards/professional/index.json",
    "preview.png",
)


def build_example(root: str) -> None:
    """Build the example dataset into ``root`` (in this process, one worker)."""
    from pipeline.cli import main

    code = main([*EXAMPLE_BUILD, "--out", root])
    if code != 0:
        raise RuntimeError(f"the example build into {root} exited with {code}")


def describe_example(root: str) -> None:
    """Write the card, plots, croissant.json and preview.png into the built ``root``."""
    from manifests.card import write_card
    from manifests.croissant import write_croissant
    from manifests.preview import write_preview
    from manifests.storage import Store

    store = Store(root)
    write_card(store)
    write_croissant(store)
    write_preview(store, n=PREVIEW_N, cell=PREVIEW_CELL)


def copy_example(root: str, dest: str | Path) -> list[Path]:
    """Copy :data:`EXAMPLE_FILES` from ``root`` into ``dest``; returns the written paths."""
    written = []
    for rel in EXAMPLE_FILES:
        target = Path(dest) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(root) / rel, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dest = Path(argv[0] if argv else Path(__file__).resolve().parents[1] / "docs" / "example")
    with tempfile.TemporaryDirectory(prefix="mirrorset-example-") as folder:
        root = f"{folder}/root"
        build_example(root)
        describe_example(root)
        for path in copy_example(root, dest):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Progress bars for long stages: tqdm on stderr, silent when disabled."""

from __future__ import annotations

import sys

from tqdm import tqdm


def bar(desc: str, total: int | None, *, enabled: bool, unit: str = "it") -> tqdm:
    """A tqdm bar on stderr (no-op object when ``enabled`` is False)."""
    return tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled, dynamic_ncols=True
    )

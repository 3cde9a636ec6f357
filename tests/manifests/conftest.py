"""Fixtures of the manifests tests: one real example build (``manifests.example``), made once.

The build runs the whole pipeline on the sample corpus (both subsets, ~30 s); tests that
change files work on a copy (``root_copy``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from manifests.example import build_example, describe_example


@pytest.fixture(scope="session")
def example_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example dataset root, with its card, croissant.json and preview written. Read only."""
    root = tmp_path_factory.mktemp("example") / "root"
    build_example(str(root))
    describe_example(str(root))
    return root


@pytest.fixture
def root_copy(example_root: Path, tmp_path: Path) -> Path:
    """A private copy of the example root that a test may change."""
    copy = tmp_path / "root"
    shutil.copytree(example_root, copy)
    (copy / "verify.json").unlink(missing_ok=True)
    return copy


@pytest.fixture(scope="session")
def s3_server(s3_endpoint: str) -> dict[str, object]:
    """Storage options for ``Store`` on the session's moto S3 server."""
    return {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing", "use_listings_cache": False}


@pytest.fixture
def s3_bucket(s3_server: dict[str, object], request: pytest.FixtureRequest) -> str:
    """A fresh empty bucket; returns its ``s3://`` URL."""
    import fsspec

    fs = fsspec.filesystem("s3", **s3_server)
    name = "test-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    fs.mkdir(name)
    return f"s3://{name}"

"""The built-in ``sample`` source: real photos that installed packages ship.

The files are located inside their packages with ``importlib.util.find_spec`` (the
package is not imported) and are never copied into the repository. Six show people;
``coffee`` shows none and must end in the rejects manifest, which exercises that path.
Licences and credits are also listed in the repository's NOTICE file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SamplePhoto:
    """One sample photo: ``path`` is absolute; ``credit`` is the package's own statement."""

    name: str
    path: str
    package: str
    credit: str


class SampleCorpusError(RuntimeError):
    """A package that ships a sample photo is missing, or the file is not in it."""


#: (name, import package, distribution to install, path inside the package, credit), in corpus order.
_SAMPLES: tuple[tuple[str, str, str, str, str], ...] = (
    ("astronaut", "skimage", "scikit-image", "data/astronaut.png",
     "Eileen Collins, NASA Great Images database; no known copyright restrictions, public domain "
     "(scikit-image, skimage.data.astronaut)"),
    ("camera", "skimage", "scikit-image", "data/camera.png",
     "Greyscale photo of a cameraman; CC0 by the photographer Lav Varshney "
     "(scikit-image, skimage.data.camera)"),
    ("grace_hopper", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
     "Grace Hopper; JPEG comment: 'File source: http://commons.wikimedia.org/wiki/File:Grace_Hopper.jpg'; "
     "matplotlib sample data (matplotlib licence)"),
    ("bus", "ultralytics", "ultralytics", "assets/bus.jpg",
     "Street scene with people and a bus; Ultralytics package asset, AGPL-3.0 (package licence)"),
    ("zidane", "ultralytics", "ultralytics", "assets/zidane.jpg",
     "Two men in suits; Ultralytics package asset, AGPL-3.0 (package licence)"),
    ("t1", "insightface", "insightface", "data/images/t1.jpg",
     "Group photo; insightface package test image; the package metadata states no licence"),
    ("coffee", "skimage", "scikit-image", "data/coffee.png",
     "Coffee cup, courtesy of Pikolo Espresso Bar; CC0 by the photographer Rachel Michetti "
     "(scikit-image, skimage.data.coffee); contains no person"),
)


def sample_paths() -> list[SamplePhoto]:
    """All sample photos in a fixed order; raises SampleCorpusError naming what is missing."""
    return [_locate(*entry) for entry in _SAMPLES]


def _locate(name: str, package: str, distribution: str, relative: str, credit: str) -> SamplePhoto:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SampleCorpusError(
            f"sample photo {name!r} needs the Python package {package!r} "
            f"(pip distribution {distribution!r}), which is not installed"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return SamplePhoto(name=name, path=str(path), package=package, credit=credit)
    raise SampleCorpusError(
        f"sample photo {name!r}: {relative} not found in package {package!r} at "
        f"{list(spec.submodule_search_locations)}; this {distribution} version does not ship it"
    )

"""The one build configuration: a frozen ``MirrorsetConfig`` from ``params.yaml``.

Sub-configs flow down to the packages that own them (``ingest`` -> pipeline.imageio,
``detector``/``gates`` -> detectors, ``simulated.augment`` / ``simulated.warp`` -> warps).
:func:`load_config` reads YAML through :func:`pipeline.configtools.from_dict`; CLI flags
override single fields with :func:`with_overrides`. Everything except ``cluster`` defines
the dataset and is saved with it (``OUT/config.json``); ``cluster`` only says where it runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from detectors.config import DetectorConfig, GateConfig
from pipeline.configtools import ConfigError, from_dict, to_dict
from pipeline.imageio import DecodeLimits
from warps.augment import SimulatedAugmentSpec
from warps.chain import StrengthSpec, WarpSettings

#: The default configuration file shipped at the repository root.
DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / "params.yaml"


@dataclass(frozen=True)
class SimulatedConfig:
    """Simulated pairs: chains of ``min_ops``-``max_ops`` ops planned on an FFHQ-aligned
    ``crop_size``^2 face frame, applied to the photo scaled to long side <= ``base_long_side``
    (never upscaled), ``views`` self-augmented views per edit, ``edits_per_face`` edits."""

    base_long_side: int = 1024
    crop_size: int = 1024
    min_ops: int = 1
    max_ops: int = 3
    strengths: StrengthSpec = field(default_factory=StrengthSpec)
    edits_per_face: int = 2
    views: int = 8
    augment: SimulatedAugmentSpec = field(default_factory=SimulatedAugmentSpec)
    warp: WarpSettings = field(default_factory=WarpSettings)

    def __post_init__(self) -> None:
        if self.base_long_side < 64 or self.crop_size < 64:
            raise ValueError(
                f"base_long_side and crop_size must be >= 64, got {self.base_long_side}, {self.crop_size}"
            )
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if not 1 <= self.edits_per_face <= 100 or not 1 <= self.views <= 100:
            raise ValueError(
                f"edits_per_face and views must be in [1, 100], got {self.edits_per_face}, {self.views}"
            )


@dataclass(frozen=True)
class OutputConfig:
    """Encoding of the pair images (the mask is always PNG) and shard size in sources."""

    image_format: Literal["jpeg", "png", "webp"] = "jpeg"
    jpeg_quality: int = 95
    sources_per_shard: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.sources_per_shard < 1:
            raise ValueError(f"sources_per_shard must be >= 1, got {self.sources_per_shard}")


@dataclass(frozen=True)
class ClusterConfig:
    """Where the build runs; never changes the bytes of the dataset.

    ``backend``: "auto" runs in-process when ``num_workers`` is 1 and no address is set,
    on Ray otherwise. ``address``: a Ray cluster to join (else ``RAY_ADDRESS``, else a
    private local Ray). ``detect_actors``: detector actors (0 = ``num_workers``).
    """

    backend: Literal["auto", "local", "ray"] = "auto"
    address: str | None = None
    num_workers: int = 2
    num_cpus_per_worker: float = 1.0
    detect_actors: int = 0
    detect_chunk_size: int = 8
    max_retries: int = 2

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")
        if not self.num_cpus_per_worker > 0:
            raise ValueError(f"num_cpus_per_worker must be > 0, got {self.num_cpus_per_worker}")
        if self.detect_actors < 0 or self.detect_chunk_size < 1 or self.max_retries < 0:
            raise ValueError(
                "need detect_actors >= 0, detect_chunk_size >= 1 and max_retries >= 0, got "
                f"{self.detect_actors}, {self.detect_chunk_size}, {self.max_retries}"
            )
        if self.backend == "local" and (self.num_workers != 1 or self.address):
            raise ValueError("backend 'local' runs one in-process worker and takes no address")

    def resolved_backend(self) -> Literal["local", "ray"]:
        if self.backend != "auto":
            return self.backend
        return "local" if self.num_workers == 1 and not self.address else "ray"


@dataclass(frozen=True)
class MirrorsetConfig:
    """Everything a build needs. ``limit`` caps the number of source photos read (0 = all)."""

    seed: int = 0
    subset: Literal["simulated"] = "simulated"
    limit: int = 0
    ingest: DecodeLimits = field(default_factory=DecodeLimits)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    gates: GateConfig = field(default_factory=GateConfig)
    simulated: SimulatedConfig = field(default_factory=SimulatedConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.limit < 0:
            raise ValueError(f"limit must be >= 0 (0 = no limit), got {self.limit}")

    def dataset_dict(self) -> dict[str, Any]:
        """The fields that define the dataset's bytes (all but ``cluster``), as plain data."""
        data = to_dict(self)
        del data["cluster"]
        return data


def load_config(path: str | Path | None = None) -> MirrorsetConfig:
    """Config from a YAML file (default: the repository's ``params.yaml``); missing keys keep defaults."""
    path = Path(path) if path is not None else DEFAULT_PARAMS
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return from_dict(MirrorsetConfig, data if data is not None else {})


def config_from_dataset_dict(data: dict[str, Any], cluster: ClusterConfig) -> MirrorsetConfig:
    """Inverse of :meth:`MirrorsetConfig.dataset_dict`, with the run's ``cluster``."""
    return dataclasses.replace(from_dict(MirrorsetConfig, data), cluster=cluster)


def with_overrides(config: MirrorsetConfig, overrides: dict[str, Any]) -> MirrorsetConfig:
    """Replace dotted fields, e.g. ``{"seed": 3, "cluster.num_workers": 2}``; None values are ignored."""
    data = to_dict(config)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for name in parents:
            if not isinstance(node.get(name), dict):
                raise ConfigError(f"override {dotted!r}: {name!r} is not a config section")
            node = node[name]
        if leaf not in node:
            raise ConfigError(f"override {dotted!r}: unknown field {leaf!r}")
        node[leaf] = value
    return from_dict(MirrorsetConfig, data)

"""The one build configuration: a frozen ``MirrorsetConfig`` from ``params.yaml``.

Sub-configs flow down to the packages that own them (``ingest`` -> pipeline.imageio,
``detector``/``gates`` -> detectors, ``*.augment`` / ``*.warp`` -> warps). :func:`load_config`
reads YAML through :func:`pipeline.configtools.from_dict`; CLI flags override single fields
with :func:`with_overrides`.

Which fields define which outputs (``config.json`` records each group, and a stage refuses
to resume over outputs made with a different group unless told to replace them):

- ``ingest`` group: ``limit``, ``ingest`` -> the sources table;
- ``detect`` group: ``detector``, ``gates`` -> the detections table;
- one group per subset: ``seed``, ``output``, ``splits``, ``qa`` and that subset's section ->
  its plan, shards and pairs. Changing ``professional`` rebuilds the professional subset only.

``cluster`` and ``train`` never change the dataset's bytes and are not recorded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from detectors.config import DetectorConfig, GateConfig
from pipeline.configtools import ConfigError, from_dict, to_dict
from pipeline.fidelity import QaGates
from pipeline.imageio import DecodeLimits
from warps.augment import ProfessionalAugmentSpec, SimulatedAugmentSpec
from warps.chain import StrengthSpec, WarpSettings

#: The default configuration file shipped at the repository root.
DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / "params.yaml"

Subset = Literal["simulated", "professional"]


def _check_counts(edits: int, views: int, attempts: int) -> None:
    from manifests.schema import MAX_EDITS, MAX_VIEWS

    if not 1 <= edits < MAX_EDITS or not 1 <= views < MAX_VIEWS or not 1 <= attempts <= 100:
        raise ValueError(
            f"need 1 <= edits < {MAX_EDITS}, 1 <= views < {MAX_VIEWS}, 1 <= attempts <= 100; "
            f"got {edits}, {views}, {attempts}"
        )


@dataclass(frozen=True)
class IngestConfig:
    """What a usable source photo may be, and where listed paths may point.

    ``min_side`` / ``max_pixels`` / ``max_bytes``: see :class:`pipeline.imageio.DecodeLimits`.
    ``list_root``: paths in a ``.parquet``/``.csv`` list must resolve below this folder
    (null: below the list's own folder). ``chunk_size``: paths per ingest task.
    """

    min_side: int = 64
    max_pixels: int = 100_000_000
    max_bytes: int = 512 * 1024 * 1024
    list_root: str | None = None
    chunk_size: int = 256

    def __post_init__(self) -> None:
        self.limits  # validates the three limits
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")

    @property
    def limits(self) -> DecodeLimits:
        return DecodeLimits(self.min_side, self.max_pixels, self.max_bytes)


@dataclass(frozen=True)
class FramingConfig:
    """The simulated subset's base frame: the image the edit is pasted into and the views
    are re-cropped from.

    ``base: face`` (default): a ``frame_size``-pixel square (clipped to the photo) centred
    on the edited face and scaled so the face's inter-ocular distance is drawn
    log-uniformly from ``iod_px`` per edit; at most ``max_upscale`` times the source
    resolution, else the face is rejected ``face_too_small_for_output``.
    ``base: photo``: the whole photo scaled (never up) to long side <= ``photo_long_side``.
    """

    base: Literal["face", "photo"] = "face"
    frame_size: int = 1024
    iod_px: tuple[float, float] = (100.0, 200.0)
    max_upscale: float = 2.5
    photo_long_side: int = 1024

    def __post_init__(self) -> None:
        if self.frame_size < 64 or self.photo_long_side < 64:
            raise ValueError(f"frame_size and photo_long_side must be >= 64, got {self.frame_size}, {self.photo_long_side}")
        lo, hi = self.iod_px
        if not 0 < lo <= hi:
            raise ValueError(f"iod_px must be an interval 0 < lo <= hi, got {self.iod_px}")
        if hi * 4 > self.frame_size:
            raise ValueError(f"iod_px upper bound {hi} leaves no room for the face in a {self.frame_size} px frame")
        if not self.max_upscale >= 1.0:
            raise ValueError(f"max_upscale must be >= 1, got {self.max_upscale}")


@dataclass(frozen=True)
class LadderConfig:
    """Strength ladders (after PIXELS' progressive editing): ``per_face`` extra op ladders per
    face, each one op (drawn per ladder) rendered at every magnitude of ``strengths`` with one
    sign; the rungs share the base frame and a ``ladder_id``."""

    per_face: int = 1
    strengths: tuple[int, ...] = (25, 50, 75, 100)

    def __post_init__(self) -> None:
        if self.per_face < 0:
            raise ValueError(f"ladders.per_face must be >= 0, got {self.per_face}")
        if not self.strengths or list(self.strengths) != sorted(set(self.strengths)) or not 1 <= self.strengths[0] <= self.strengths[-1] <= 100:
            raise ValueError(f"ladder strengths must be increasing integers in [1, 100], got {self.strengths}")


@dataclass(frozen=True)
class SpatialStrengthConfig:
    """Spatially varying strength: with ``probability`` an edit's displacement is multiplied by
    a smooth ramp across its region, from ``low`` to 1 along a random direction (stored per
    pair as ``{key}.strength.png``; 255 everywhere for uniform edits)."""

    probability: float = 0.2
    low: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1 or not 0 <= self.low < 1:
            raise ValueError(f"need probability in [0, 1] and low in [0, 1), got {self.probability}, {self.low}")


@dataclass(frozen=True)
class SimulatedConfig:
    """Simulated pairs: random chains of ``min_ops``-``max_ops`` of the 8 simulated ops,
    planned on an FFHQ-aligned ``crop_size``^2 face frame and pasted into the base frame
    (``framing``, drawn once per face); ``edits_per_face`` chains per usable face, then the
    rungs of ``ladders``, ``views`` views each; ``spatial_strength`` makes some edits vary in
    strength across their region.

    An edit that fails (no admissible view, fold, ``edit_too_small`` when its largest
    displacement in a view is under ``min_disp_px``, a QA gate) is tried again with fresh
    random draws, ``max_attempts`` times in all; every failure is a reject row.
    """

    enabled: bool = True
    crop_size: int = 1024
    framing: FramingConfig = field(default_factory=FramingConfig)
    min_ops: int = 1
    max_ops: int = 3
    strengths: StrengthSpec = field(default_factory=StrengthSpec)
    edits_per_face: int = 2
    ladders: LadderConfig = field(default_factory=LadderConfig)
    spatial_strength: SpatialStrengthConfig = field(default_factory=SpatialStrengthConfig)
    views: int = 8
    max_attempts: int = 3
    min_disp_px: float = 1.0
    augment: SimulatedAugmentSpec = field(default_factory=SimulatedAugmentSpec)
    warp: WarpSettings = field(default_factory=WarpSettings)

    def __post_init__(self) -> None:
        if self.crop_size < 64:
            raise ValueError(f"crop_size must be >= 64, got {self.crop_size}")
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        _check_counts(self.edits_per_face, self.views, self.max_attempts)
        if self.min_disp_px < 0:
            raise ValueError(f"min_disp_px must be >= 0, got {self.min_disp_px}")


@dataclass(frozen=True)
class ComboSpec:
    """One family of professional edits: every combination of ``size`` distinct applicable
    ops, each op at every strength of ``ProfessionalConfig.strengths`` (so 2^size sign
    patterns with the default +-100), each rendered in ``views`` views. ``max_edits`` caps the
    family per person (a seeded sample of the combinations, null = all)."""

    size: int = 1
    views: int = 2
    max_edits: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 4:
            raise ValueError(f"combo size must be in [1, 4], got {self.size}")
        _check_counts(1, self.views, 1)
        if self.max_edits is not None and self.max_edits < 1:
            raise ValueError(f"max_edits must be null or >= 1, got {self.max_edits}")


@dataclass(frozen=True)
class ProfessionalConfig:
    """Professional pairs: the 27 catalog ops at full resolution on each usable person.

    ``ops``: op names to use (empty = every professional op). Facial ops need a usable face
    whose inter-ocular distance is at least ``min_face_iod_px`` in the photo; body ops a pose
    that passed its agreement check. ``combos`` say which edits a person gets; the views are
    crops of about ``augment.target_pixels`` that contain the edited face or body box, or of
    ``max_area_fraction`` of a smaller photo's area; a photo whose views would have fewer than
    ``min_pixels`` is rejected ``photo_too_small``.
    """

    enabled: bool = True
    ops: tuple[str, ...] = ()
    strengths: tuple[int, ...] = (100, -100)
    combos: tuple[ComboSpec, ...] = (ComboSpec(size=1, views=2),)
    min_face_iod_px: float = 40.0
    max_area_fraction: float = 0.5
    min_pixels: int = 250_000
    max_attempts: int = 3
    min_disp_px: float = 1.0
    augment: ProfessionalAugmentSpec = field(default_factory=ProfessionalAugmentSpec)
    warp: WarpSettings = field(default_factory=WarpSettings)

    def __post_init__(self) -> None:
        from warps.catalog import ops_for_subset

        known = {spec.name for spec in ops_for_subset("professional")}
        unknown = sorted(set(self.ops) - known)
        if unknown:
            raise ValueError(f"unknown professional op(s) {unknown}; known: {sorted(known)}")
        if not self.strengths or any(not -100 <= s <= 100 or s == 0 for s in self.strengths):
            raise ValueError(f"strengths must be non-zero integers in [-100, 100], got {self.strengths}")
        if not self.combos:
            raise ValueError("combos must name at least one family of edits")
        sizes = [c.size for c in self.combos]
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"each combo size may appear once, got {sizes}")
        _check_counts(1, 1, self.max_attempts)
        if not 0 < self.max_area_fraction <= 1 or self.min_pixels < 1:
            raise ValueError(f"need 0 < max_area_fraction <= 1 and min_pixels >= 1, got {self.max_area_fraction}, {self.min_pixels}")


@dataclass(frozen=True)
class OutputConfig:
    """Encoding and shard sizing.

    Images: ``image_format`` (jpeg at ``jpeg_quality`` with 4:4:4 chroma, or lossless png /
    webp); masks are PNG. Shards hold a fixed number of samples, chosen so a shard is about
    ``shard_target_bytes`` given ``bytes_per_pixel`` (encoded bytes per image pixel, an
    estimate per format) and the subset's nominal pair size. ``edits_per_run``: consecutive
    edits of one person a shard takes at once (one photo decode each); smaller runs mix
    more photos into every shard.
    """

    image_format: Literal["jpeg", "png", "webp"] = "jpeg"
    jpeg_quality: int = 95
    shard_target_bytes: int = 1_000_000_000
    bytes_per_pixel: float = 0.45
    edits_per_run: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.shard_target_bytes < 1 << 16:
            raise ValueError(f"shard_target_bytes must be >= 65536, got {self.shard_target_bytes}")
        if not self.bytes_per_pixel > 0:
            raise ValueError(f"bytes_per_pixel must be > 0, got {self.bytes_per_pixel}")
        if self.edits_per_run < 1:
            raise ValueError(f"edits_per_run must be >= 1, got {self.edits_per_run}")


@dataclass(frozen=True)
class QaConfig:
    """Per-pair measurements (docs/fidelity.md) and the gates that turn bad pairs into rejects.

    ``enabled``: measure every pair (the QA columns stay null when off). ``identity_model``:
    an ArcFace-style ONNX file (tracked under models/) for ``identity_sim``; null = dlib's
    128-d embedding from ``face-recognition-models``. ``gates``: thresholds (null = off).
    """

    enabled: bool = True
    identity_model: str | None = None
    gates: QaGates = field(default_factory=QaGates)


@dataclass(frozen=True)
class SplitConfig:
    """Train / val / test split by source photo: each photo goes to one split, drawn from
    its id and the seed, with these fractions (train gets the rest)."""

    val: float = 0.05
    test: float = 0.05

    def __post_init__(self) -> None:
        if self.val < 0 or self.test < 0 or self.val + self.test >= 1:
            raise ValueError(f"split fractions must be >= 0 and leave room for train, got val={self.val}, test={self.test}")


@dataclass(frozen=True)
class ClusterConfig:
    """Where the build runs; never changes the bytes of the dataset.

    ``backend``: "auto" runs in-process when ``num_workers`` is 1 and no address is set,
    on Ray otherwise. ``address``: a Ray cluster to join (else ``RAY_ADDRESS``, else a
    private local Ray). ``detect_actors``: detector actors (0 = ``num_workers``).
    ``task_timeout_s``: a task attempt running longer is presumed hung: its worker is killed
    and the task re-run elsewhere (Ray only). A failed attempt is retried ``max_retries`` times,
    after ``retry_backoff_s`` doubling up to ``retry_backoff_max_s``. ``worker_start_timeout_s``:
    time for a worker's scheduling, code upload and setup. ``photo_timeout_s``: one photo's
    detection, or one edit's synthesis, running longer becomes a ``timeout`` reject (0 = no
    limit). ``lock_stale_after_s`` / ``lock_heartbeat_s``: a build holds the root's lock
    (``manifests.lock``) and refreshes it this often; one silent for longer is presumed dead.
    """

    backend: Literal["auto", "local", "ray"] = "auto"
    address: str | None = None
    num_workers: int = 2
    num_cpus_per_worker: float = 1.0
    detect_actors: int = 0
    detect_chunk_size: int = 8
    max_retries: int = 2
    retry_backoff_s: float = 1.0
    retry_backoff_max_s: float = 60.0
    task_timeout_s: float = 1800.0
    worker_start_timeout_s: float = 600.0
    photo_timeout_s: float = 300.0
    lock_stale_after_s: float = 120.0
    lock_heartbeat_s: float = 10.0

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
        if not self.task_timeout_s > 0 or not self.worker_start_timeout_s > 0 or self.photo_timeout_s < 0:
            raise ValueError(
                "need task_timeout_s > 0, worker_start_timeout_s > 0 and photo_timeout_s >= 0, got "
                f"{self.task_timeout_s}, {self.worker_start_timeout_s}, {self.photo_timeout_s}"
            )
        if self.retry_backoff_s < 0 or self.retry_backoff_max_s < self.retry_backoff_s:
            raise ValueError(f"need 0 <= retry_backoff_s <= retry_backoff_max_s, got {self.retry_backoff_s}, {self.retry_backoff_max_s}")
        if not 0 < 2 * self.lock_heartbeat_s <= self.lock_stale_after_s:
            raise ValueError(f"need 0 < 2 * lock_heartbeat_s <= lock_stale_after_s, got {self.lock_heartbeat_s}, {self.lock_stale_after_s}")
        if self.backend == "local" and (self.num_workers != 1 or self.address):
            raise ValueError("backend 'local' runs one in-process worker and takes no address")

    def resolved_backend(self) -> Literal["local", "ray"]:
        if self.backend != "auto":
            return self.backend
        return "local" if self.num_workers == 1 and not self.address else "ray"


@dataclass(frozen=True)
class MirrorsetConfig:
    """Everything a build needs. ``limit`` caps the number of source paths read (0 = all)."""

    seed: int = 0
    limit: int = 0
    ingest: IngestConfig = field(default_factory=IngestConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    gates: GateConfig = field(default_factory=GateConfig)
    simulated: SimulatedConfig = field(default_factory=SimulatedConfig)
    professional: ProfessionalConfig = field(default_factory=ProfessionalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    qa: QaConfig = field(default_factory=QaConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.limit < 0:
            raise ValueError(f"limit must be >= 0 (0 = no limit), got {self.limit}")

    def subset(self, name: str) -> SimulatedConfig | ProfessionalConfig:
        """The section of subset ``name``."""
        if name not in ("simulated", "professional"):
            raise ValueError(f"unknown subset {name!r}; expected simulated or professional")
        return getattr(self, name)

    def dataset_dict(self) -> dict[str, Any]:
        """Every field that defines dataset bytes (all but ``cluster``), as plain data."""
        data = to_dict(self)
        del data["cluster"]
        return data

    def groups(self) -> dict[str, Any]:
        """The recorded config groups (module docstring), as plain data."""
        data = to_dict(self)
        common = {key: data[key] for key in ("seed", "output", "splits", "qa")}
        return {
            "ingest": {"limit": data["limit"], "ingest": data["ingest"]},
            "detect": {"detector": data["detector"], "gates": data["gates"]},
            "simulated": {**common, "simulated": data["simulated"]},
            "professional": {**common, "professional": data["professional"]},
        }


def load_config(path: str | Path | None = None) -> MirrorsetConfig:
    """Config from a YAML file (default: the repository's ``params.yaml``); missing keys keep defaults.

    Top-level sections other than MirrorsetConfig's (``train``: the training stage's own)
    are left to their owners.
    """
    return from_dict(MirrorsetConfig, _build_sections(read_params(path)))


def read_params(path: str | Path | None = None) -> dict[str, Any]:
    """The YAML mapping of a params file (default: the repository's ``params.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_PARAMS
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


#: Top-level params.yaml sections read by other stages, not by the build.
FOREIGN_SECTIONS = ("train", "dvc")


def _build_sections(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in FOREIGN_SECTIONS}


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


def config_from_dataset_dict(data: dict[str, Any], cluster: ClusterConfig) -> MirrorsetConfig:
    """Inverse of :meth:`MirrorsetConfig.dataset_dict`, with the run's ``cluster``."""
    return dataclasses.replace(from_dict(MirrorsetConfig, data), cluster=cluster)


"""MirrorsetConfig: params.yaml, overrides, validation, what defines the dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import (
    ClusterConfig,
    ComboSpec,
    FramingConfig,
    ProfessionalConfig,
    MirrorsetConfig,
    OutputConfig,
    SimulatedConfig,
    config_from_dataset_dict,
    load_config,
    with_overrides,
)
from pipeline.configtools import ConfigError


def test_params_yaml_documents_exactly_the_defaults() -> None:
    assert load_config() == MirrorsetConfig()


def test_yaml_overrides_nested_fields(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: 7\nsimulated:\n  views: 3\n  strengths:\n    min_magnitude: 50\ncluster:\n  num_workers: 1\n")
    config = load_config(path)
    assert config.seed == 7 and config.simulated.views == 3
    assert config.simulated.strengths.min_magnitude == 50
    assert config.simulated.max_ops == 3  # untouched keys keep their defaults


def test_unknown_or_wrong_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("simulated:\n  viewz: 3\n")
    with pytest.raises(ConfigError, match="viewz"):
        load_config(path)
    path.write_text("output:\n  image_format: gif\n")
    with pytest.raises(ConfigError, match="gif"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_contradictions_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_ops"):
        SimulatedConfig(min_ops=3, max_ops=2)
    with pytest.raises(ValueError, match="jpeg_quality"):
        OutputConfig(jpeg_quality=0)
    with pytest.raises(ValueError, match="local"):
        ClusterConfig(backend="local", num_workers=2)
    with pytest.raises(ValueError, match="seed"):
        MirrorsetConfig(seed=-1)


def test_cli_overrides_and_backend_choice() -> None:
    config = with_overrides(MirrorsetConfig(), {"seed": 4, "cluster.num_workers": 1, "limit": None})
    assert config.seed == 4 and config.limit == 0
    assert config.cluster.resolved_backend() == "local"
    assert with_overrides(config, {"cluster.num_workers": 3}).cluster.resolved_backend() == "ray"
    assert with_overrides(config, {"cluster.address": "ray://head:10001"}).cluster.resolved_backend() == "ray"
    with pytest.raises(ConfigError, match="nope"):
        with_overrides(config, {"simulated.nope": 1})


def test_cluster_settings_do_not_define_the_dataset() -> None:
    a = MirrorsetConfig(cluster=ClusterConfig(num_workers=1))
    b = MirrorsetConfig(cluster=ClusterConfig(num_workers=4))
    assert a.dataset_dict() == b.dataset_dict() and a.groups() == b.groups()
    assert "cluster" not in a.dataset_dict()
    assert MirrorsetConfig(seed=1).dataset_dict() != a.dataset_dict()
    assert config_from_dataset_dict(b.dataset_dict(), b.cluster) == b


def test_each_subset_records_only_its_own_section() -> None:
    base = MirrorsetConfig()
    changed = with_overrides(base, {"professional.min_pixels": 1000})
    assert changed.groups()["simulated"] == base.groups()["simulated"]
    assert changed.groups()["professional"] != base.groups()["professional"]
    reseeded = with_overrides(base, {"seed": 3})
    assert reseeded.groups()["detect"] == base.groups()["detect"]
    assert reseeded.groups()["simulated"] != base.groups()["simulated"]
    merged = {**base.groups()["ingest"], **base.groups()["detect"], **base.groups()["simulated"]}
    assert set(merged) | {"professional", "cluster"} == set(base.dataset_dict()) | {"cluster"}


def test_professional_recipe_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown professional op"):
        ProfessionalConfig(ops=("eye_size", "tail_length"))
    with pytest.raises(ValueError, match="strengths"):
        ProfessionalConfig(strengths=(0,))
    with pytest.raises(ValueError, match="once"):
        ProfessionalConfig(combos=(ComboSpec(size=1), ComboSpec(size=1, views=4)))
    with pytest.raises(ValueError, match="iod_px"):
        FramingConfig(iod_px=(300.0, 400.0))

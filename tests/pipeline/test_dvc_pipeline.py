"""`dvc repro` on the built-in sample, end to end, in a temporary copy of the repository:
ingest -> detect -> build (both subsets) -> verify -> a short CPU training run; then a change
to one subset's params reruns that subset only."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

#: Small enough for CI: three sample photos, few edits and views, a handful of training steps.
SMALL = {
    "limit": 3,
    "simulated": {"edits_per_face": 1, "views": 2, "ladders": {"per_face": 0}},
    "professional": {"ops": ["eye_size", "mouth_width"], "combos": [{"size": 1, "views": 2, "max_edits": None}],
                     "min_pixels": 50000, "augment": {"target_pixels": 200000}},
    "train": {"steps": 6, "switch_step": 3, "batch_size": 2, "eval_quads": 4, "num_workers": 0, "checkpoint_every": 3},
    "cluster": {"num_workers": 2},
}


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        base[key] = _merge(dict(base.get(key) or {}), value) if isinstance(value, dict) else value
    return base


def _dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the venv's mirrorset and dvc
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.ray
def test_dvc_repro_runs_the_pipeline_and_reruns_one_subset_only(tmp_path: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    repo = tmp_path / "repo"
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(_merge(params, SMALL), sort_keys=False))

    first = _dvc(repo, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    root = repo / "data" / "sample"
    report = json.loads((root / "verify.json").read_text())
    assert report["ok"] and report["mode"] == "full" and {s["subset"] for s in report["shards"]} == {"simulated", "professional"}
    metrics = json.loads((repo / "train" / "sample" / "metrics.json").read_text())
    assert metrics["steps"] == 6 and {"before", "after"} <= set(metrics["heldout"]["simulated"])
    assert (repo / "train" / "sample" / "checkpoints" / "last.safetensors").is_file()
    status = _dvc(repo, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout or "{}").keys() <= {"verify"}  # always_changed only

    simulated = {p.name: _digest(p) for p in sorted((root / "shards" / "simulated").glob("*.tar"))}
    professional_before = (root / "shards" / "professional" / "index.json").read_text()
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["professional"]["ops"] = ["eye_size"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = json.loads(_dvc(repo, "status", "--json").stdout or "{}")
    assert "build@professional" in changed and "build@simulated" not in changed and "detect" not in changed
    second = _dvc(repo, "repro")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Running stage 'build@simulated'" not in second.stdout and "Running stage 'build@professional'" in second.stdout
    assert {p.name: _digest(p) for p in sorted((root / "shards" / "simulated").glob("*.tar"))} == simulated
    assert (root / "shards" / "professional" / "index.json").read_text() != professional_before
    assert json.loads((root / "verify.json").read_text())["ok"]

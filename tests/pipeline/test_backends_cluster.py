"""Code reaches a cluster's workers through ``runtime_env``: a head and two worker nodes on
this machine (``ray.cluster_utils.Cluster``, in a subprocess whose cwd and environment the
driver does not share) run a stage for a driver whose code lives in a folder only the
driver sees. A fingerprint module in that folder proves which code the workers ran."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fault_stage import CropStage, CropTask, tree_digest
from pipeline.backends import open_backend
from pipeline.backends.ray_backend import CODE_PACKAGES
from pipeline.tasks import run_tasks

REPO = Path(__file__).resolve().parents[2]
TASKS = 8

#: A head without CPUs (so work lands on the worker nodes) and two 1-CPU worker nodes;
#: prints the address, shuts down when stdin closes.
CLUSTER = """
import sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
for _ in range(2):
    cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()
cluster.shutdown()
"""

#: Runs the crops on the cluster twice, without and with the code shipped; one JSON line each.
DRIVER = """
import json, os, sys
import ray
import fault_stage
from fault_stage import CropStage, CropTask
from pipeline.backends.ray_backend import RayBackend
from pipeline.tasks import TasksFailed, run_tasks

class WhereStage(CropStage):
    def process_batch(self, items):
        import pipeline
        from pipeline._fingerprint import TOKEN
        return [{"digest": digest, "token": TOKEN, "pipeline": pipeline.__file__, "cwd": os.getcwd(),
                 "node": ray.get_runtime_context().get_node_id()} for digest in super().process_batch(items)]

ray.cloudpickle.register_pickle_by_value(fault_stage)
address, out = sys.argv[1], sys.argv[2]
for ship in (False, True):
    with RayBackend(num_workers=2, address=address, ship_code=ship) as backend:
        try:
            results = run_tasks(backend, WhereStage(out, out + "-scratch"), [CropTask(i) for i in range(%d)],
                                label=str, max_retries=0)
            print(json.dumps({"ship": ship, "results": results}), flush=True)
        except TasksFailed as exc:
            print(json.dumps({"ship": ship, "error": str(exc)}), flush=True)
""" % TASKS


@pytest.mark.ray
def test_workers_on_other_nodes_run_the_drivers_code_shipped_by_runtime_env(tmp_path: Path) -> None:
    code, driver_cwd, nodes_cwd, out = (tmp_path / name for name in ("code", "driver", "nodes", "out"))
    for package in CODE_PACKAGES:
        shutil.copytree(REPO / package, code / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "tests" / "pipeline" / "fault_stage.py", code)
    token = secrets.token_hex(8)
    (code / "pipeline" / "_fingerprint.py").write_text(f"TOKEN = {token!r}\n")
    driver_cwd.mkdir()
    nodes_cwd.mkdir()
    (driver_cwd / "driver.py").write_text(DRIVER)

    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER], cwd=nodes_cwd, env=clean_env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        address = cluster.stdout.readline().strip()
        assert address, "the cluster did not start"
        driver = subprocess.run(
            [sys.executable, "driver.py", address, str(out)], cwd=driver_cwd, env={**clean_env, "PYTHONPATH": str(code)},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=60)
        cluster.stdout.close()
    assert driver.returncode == 0, driver.stderr[-3000:]
    unshipped, shipped = (json.loads(line) for line in driver.stdout.splitlines() if line.startswith("{"))

    # Without runtime_env the workers run whatever their node has (here: the installed
    # checkout, which lacks the fingerprint, or is another version altogether).
    assert "error" in unshipped and token not in json.dumps(unshipped)
    # With it they run exactly the driver's code, unpacked from Ray's package store.
    results = shipped["results"]
    assert {r["token"] for r in results} == {token}
    assert all("/runtime_resources/py_modules_files/" in r["pipeline"] for r in results)
    assert str(driver_cwd) not in {r["cwd"] for r in results}
    assert len({r["node"] for r in results}) == 2

    reference = tmp_path / "reference"
    with open_backend("local", num_workers=1) as backend:
        run_tasks(backend, CropStage(reference, tmp_path / "scratch", work_s=0), [CropTask(i) for i in range(TASKS)], label=str)
    assert tree_digest(out) == tree_digest(reference)

"""The files of cluster/: they parse, Ray and KubeRay would accept them, they agree with each other
(ports, token auth, setup, image) and they run the pipeline's commands as the build defines them."""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from pipeline.cli import build_parser
from tests.cluster.conftest import CLUSTER_DIR, load_run_stage

REPO = CLUSTER_DIR.parent
LAUNCHERS = {"local": CLUSTER_DIR / "ray-onprem.yaml", "aws": CLUSTER_DIR / "ray-aws.yaml"}
RAYJOB = CLUSTER_DIR / "rayjob.yaml"
SLURM = CLUSTER_DIR / "slurm.sbatch"
PIPELINE = CLUSTER_DIR / "run_pipeline.sh"
README = CLUSTER_DIR / "README.md"

GCS_PORT, DASHBOARD_PORT, OBJECT_MANAGER_PORT = "6379", "8265", "8076"
SETUP = "cd ~/mirrorset && bash scripts/setup.sh"
VENV = "source ~/mirrorset/.venv/bin/activate"

# KubeRay's RayJob CRD, ray.io/v1 (kuberay feeaf72, v1.7.0-rc.0): the fields each level may have,
# and the ones it requires (the CRD's `required` lists).
RAYJOB_SPEC_FIELDS = {
    "activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionStrategy", "entrypoint",
    "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId", "managedBy", "metadata",
    "preRunningDeadlineSeconds", "rayClusterSpec", "runtimeEnvYAML", "shutdownAfterJobFinishes",
    "submissionMode", "submitterConfig", "submitterPodTemplate", "suspend", "ttlSecondsAfterFinished",
}  # fmt: skip
RAY_CLUSTER_SPEC_FIELDS = {
    "authOptions", "autoscalerOptions", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
    "headGroupSpec", "headServiceAnnotations", "historyServerOptions", "managedBy", "networkPolicy",
    "rayVersion", "suspend", "tlsOptions", "upgradeStrategy", "workerGroupSpecs",
}  # fmt: skip
HEAD_GROUP_FIELDS = {
    "enableIngress", "headService", "ingressOptions", "labels", "rayStartParams", "resources",
    "serviceType", "template",
}  # fmt: skip
WORKER_GROUP_FIELDS = {
    "groupName", "idleTimeoutSeconds", "labels", "maxReplicas", "minReplicas", "numOfHosts", "priority",
    "rayStartParams", "replicas", "resources", "scaleStrategy", "suspend", "template",
}  # fmt: skip
WORKER_GROUP_REQUIRED = {"groupName", "maxReplicas", "minReplicas", "template"}


# ----------------------------------------------------------------------------- the build's commands


def check_mirrorset_command(argv: list[str]) -> argparse.Namespace:
    """Parse ``mirrorset ...`` argv against the contract; raise on anything it does not allow."""
    assert argv[0] == "mirrorset", argv
    try:
        args = build_parser().parse_args(argv[1:])
    except (argparse.ArgumentError, SystemExit) as exc:
        raise AssertionError(f"not a pipeline command: {shlex.join(argv)} ({exc})") from None
    if args.command == "build":
        assert args.stage in ("ingest", "detect", "shards"), argv
        assert (args.source is not None) == (args.stage == "ingest"), argv
    return args


# ----------------------------------------------------------------------------- ray start lines


def ray_start_flags(command: str) -> dict[str, str]:
    """``--flag=value`` / ``--flag value`` / ``--switch`` of the ``ray start`` in a shell command."""
    words = shlex.split(command.replace("\\\n", " "))
    start = next(i for i in range(len(words) - 1) if words[i].endswith("ray") and words[i + 1] == "start")
    flags: dict[str, str] = {}
    rest = words[start + 2 :]
    for i, word in enumerate(rest):
        if not word.startswith("--"):
            continue
        name, _, value = word[2:].partition("=")
        if not value and i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            value = rest[i + 1]
        flags[name] = value.rstrip(";")
    return flags


def load_launcher(provider: str) -> dict:
    return yaml.safe_load(LAUNCHERS[provider].read_text())


# ----------------------------------------------------------------------------- launcher YAMLs


@pytest.mark.parametrize("provider", sorted(LAUNCHERS))
def test_launcher_config_passes_ray_up_validation(provider: str):
    config = load_launcher(provider)
    assert config["provider"]["type"] == provider
    prepared = prepare_config(copy.deepcopy(config))  # what `ray up` does before validating
    validate_config(prepared)
    broken = copy.deepcopy(config)
    broken["max_worker"] = 2  # the same check rejects a misspelt key
    with pytest.raises(Exception, match="max_worker"):
        validate_config(prepare_config(broken))


def test_onprem_launcher_names_its_machines():
    config = load_launcher("local")
    provider = config["provider"]
    assert provider["head_ip"] and provider["worker_ips"]
    assert provider["head_ip"] not in provider["worker_ips"]
    assert config["auth"]["ssh_user"]
    assert config["min_workers"] == config["max_workers"] == len(provider["worker_ips"])


def test_aws_launcher_has_a_gpu_node_for_training_and_a_cpu_worker_group_for_the_build():
    config = load_launcher("aws")
    assert config["provider"]["region"]
    types = config["available_node_types"]
    for node_type in types.values():
        assert node_type["node_config"]["InstanceType"] and node_type["node_config"]["ImageId"]
    gpu = [name for name, node_type in types.items() if node_type["resources"].get("GPU", 0) >= 1]
    cpu = [name for name, node_type in types.items() if not node_type["resources"].get("GPU")]
    assert gpu == [config["head_node_type"]]  # training lands where dvc runs: the head
    assert types[gpu[0]]["node_config"]["InstanceType"].startswith(("g", "p"))  # GPU instance families
    assert types[gpu[0]]["resources"]["CPU"] == 0  # build tasks stay on the workers
    assert len(cpu) == 1
    worker = types[cpu[0]]
    assert worker["min_workers"] == 0 and worker["max_workers"] > 0 and worker["resources"]["CPU"] > 0
    assert worker["max_workers"] <= config["max_workers"]


@pytest.mark.parametrize("provider", sorted(LAUNCHERS))
def test_launchers_set_up_with_setup_sh_and_start_ray_with_token_auth_on_the_shared_ports(provider: str):
    config = load_launcher(provider)
    assert config["setup_commands"] == [SETUP]
    assert config["file_mounts"]["~/mirrorset"] == "."
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert ".gitignore" in config["rsync_filter"]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        commands = config[key]
        assert all(command.startswith(VENV) for command in commands), key
        assert commands[0] == f"{VENV} && ray stop"
        assert "RAY_AUTH_MODE=token ray start" in commands[1]
    head = ray_start_flags(config["head_start_ray_commands"][1])
    assert {name: head.get(name) for name in ("head", "port", "dashboard-port", "dashboard-host")} == {
        "head": "", "port": GCS_PORT, "dashboard-port": DASHBOARD_PORT, "dashboard-host": "0.0.0.0",
    }  # fmt: skip
    assert head["object-manager-port"] == OBJECT_MANAGER_PORT
    assert head["autoscaling-config"] == "~/ray_bootstrap_config.yaml"
    worker = ray_start_flags(config["worker_start_ray_commands"][1])
    assert worker["address"] == f"$RAY_HEAD_IP:{GCS_PORT}" and "head" not in worker
    assert worker["object-manager-port"] == OBJECT_MANAGER_PORT


# ----------------------------------------------------------------------------- Slurm


def slurm_text() -> str:
    return SLURM.read_text()


def test_slurm_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SLURM)], capture_output=True).returncode == 0


def test_slurm_script_starts_head_and_workers_with_srun_and_submits_stages_as_jobs():
    text = slurm_text()
    sbatch = dict(line[len("#SBATCH ") :].partition("=")[::2] for line in text.splitlines() if line.startswith("#SBATCH "))
    assert {"--nodes", "--exclusive", "--ntasks-per-node", "--cpus-per-task"} <= set(sbatch)
    assert sbatch["--ntasks-per-node"] == "1"
    starts = re.findall(r"srun [^\n]*bash -c \\\n\s*'(exec ray start[^']*)'", text)
    assert len(starts) == 2, starts
    head, worker = (ray_start_flags(start) for start in starts)
    assert "head" in head and "block" in head and "head" not in worker and "block" in worker
    assert (head["port"], head["dashboard-port"], head["dashboard-host"]) == (GCS_PORT, DASHBOARD_PORT, "0.0.0.0")
    assert head["object-manager-port"] == worker["object-manager-port"] == OBJECT_MANAGER_PORT
    assert worker["address"] == f"$0:{GCS_PORT}" and head["node-ip-address"] == "$0"  # $0: the head's IP
    assert "export RAY_AUTH_MODE=token" in text and "ray get-auth-token --generate" in text
    assert f'export RAY_ADDRESS="$head_ip:{GCS_PORT}"' in text
    assert "export MIRRORSET_JOB_IN_PLACE=1" in text
    assert "set -- dvc repro" in text and "source .venv/bin/activate" in text
    assert "scripts/setup.sh" in text


# ----------------------------------------------------------------------------- KubeRay RayJob


def load_rayjob() -> dict:
    documents = list(yaml.safe_load_all(RAYJOB.read_text()))
    assert len(documents) == 1
    return documents[0]


def containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


def test_rayjob_is_a_ray_io_v1_rayjob():
    job = load_rayjob()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", job["metadata"]["name"])  # a DNS-1123 label
    spec = job["spec"]
    assert set(spec) <= RAYJOB_SPEC_FIELDS, set(spec) - RAYJOB_SPEC_FIELDS
    assert isinstance(spec["entrypoint"], str) and isinstance(spec["runtimeEnvYAML"], str)
    cluster = spec["rayClusterSpec"]
    assert set(cluster) <= RAY_CLUSTER_SPEC_FIELDS, set(cluster) - RAY_CLUSTER_SPEC_FIELDS
    head = cluster["headGroupSpec"]
    assert set(head) <= HEAD_GROUP_FIELDS and "template" in head
    for group in cluster["workerGroupSpecs"]:
        assert WORKER_GROUP_REQUIRED <= set(group) <= WORKER_GROUP_FIELDS, group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    for group in [head, *cluster["workerGroupSpecs"]]:
        assert all(isinstance(value, str) for value in group["rayStartParams"].values())  # map[string]string
        for container in containers(group):
            assert container["name"] and container["image"]


def test_rayjob_runs_the_installed_ray_with_token_auth_and_the_shared_ports():
    cluster = load_rayjob()["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__  # the same Ray as .venv, so the image's
    assert cluster["authOptions"] == {"mode": "token"}
    head = cluster["headGroupSpec"]
    ports = {port["name"]: str(port["containerPort"]) for port in containers(head)[0]["ports"]}
    assert ports == {"gcs-server": GCS_PORT, "dashboard": DASHBOARD_PORT, "client": "10001"}
    assert head["rayStartParams"] == {"dashboard-host": "0.0.0.0", "num-cpus": "0"}
    images = {c["image"] for g in [head, *cluster["workerGroupSpecs"]] for c in containers(g)}
    assert len(images) == 1


def test_rayjob_has_a_cpu_group_for_the_build_and_a_gpu_group_scaled_from_zero_for_training():
    cluster = load_rayjob()["spec"]["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True
    groups = {group["groupName"]: group for group in cluster["workerGroupSpecs"]}
    gpus = {name: containers(g)[0]["resources"]["limits"].get("nvidia.com/gpu", 0) for name, g in groups.items()}
    assert sorted(gpus.values()) == [0, 1]
    gpu_group = groups[next(name for name, count in gpus.items() if count)]
    assert gpu_group["minReplicas"] == gpu_group["replicas"] == 0


def test_rayjob_entrypoint_is_the_pipeline_script_with_its_variables_set():
    spec = load_rayjob()["spec"]
    assert spec["entrypoint"] == "bash /app/cluster/run_pipeline.sh"  # no shell syntax: KubeRay pastes it
    env_vars = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    required = set(re.findall(r"\$\{(MIRRORSET_\w+):\?", PIPELINE.read_text()))
    assert set(env_vars) == required == {"MIRRORSET_SOURCE", "MIRRORSET_OUT", "MIRRORSET_TRAIN_OUT"}
    dockerfile = (CLUSTER_DIR / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "COPY . /app" in dockerfile
    assert "RUN bash scripts/setup.sh" in dockerfile and "ENV PATH=/app/.venv/bin:$PATH" in dockerfile


# ----------------------------------------------------------------------------- the pipeline script


FAKE_MIRRORSET = """#!{python}
import json, os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("VERIFY_EXIT", "0")) if sys.argv[1] == "verify" else 0)
"""


def run_pipeline(tmp_path: Path, verify_exit: int) -> tuple[int, list[list[str]]]:
    """Run cluster/run_pipeline.sh locally with a `mirrorset` that records its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mirrorset"
    fake.write_text(FAKE_MIRRORSET.format(python=sys.executable))
    fake.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(
        PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]]),
        CALLS=str(calls),
        VERIFY_EXIT=str(verify_exit),
        MIRRORSET_SOURCE="sample",
        MIRRORSET_OUT="s3://bucket/out",
        MIRRORSET_TRAIN_OUT="s3://bucket/train",
    )
    result = subprocess.run(["bash", str(PIPELINE)], env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, [json.loads(line) for line in calls.read_text().splitlines()]


def test_pipeline_script_runs_every_stage_in_order(tmp_path: Path):
    code, calls = run_pipeline(tmp_path, verify_exit=0)
    assert code == 0
    assert calls == [
        ["build", "--stage", "ingest", "--source", "sample", "--out", "s3://bucket/out"],
        ["build", "--stage", "detect", "--out", "s3://bucket/out"],
        ["build", "--stage", "shards", "--subset", "simulated", "--out", "s3://bucket/out"],
        ["build", "--stage", "shards", "--subset", "professional", "--out", "s3://bucket/out"],
        ["verify", "s3://bucket/out", "--report", "s3://bucket/out/verify.json"],
        ["train", "--data", "s3://bucket/out", "--report", "s3://bucket/out/verify.json", "--out", "s3://bucket/train"],
    ]
    for call in calls:
        check_mirrorset_command(["mirrorset", *call])


def test_pipeline_script_does_not_train_when_verify_fails(tmp_path: Path):
    code, calls = run_pipeline(tmp_path, verify_exit=1)
    assert code == 1
    assert calls[-1][0] == "verify" and all(call[0] != "train" for call in calls)


def test_the_contract_check_refuses_commands_outside_the_cli():
    for argv in (
        ["mirrorset", "build", "--stage", "ingest", "--out", "o"],  # ingest needs its source
        ["mirrorset", "build", "--stage", "synth", "--out", "o"],
        ["mirrorset", "verify"],
        ["mirrorset", "train", "--out", "o"],
    ):
        with pytest.raises(AssertionError, match="mirrorset"):
            check_mirrorset_command(argv)


# ----------------------------------------------------------------------------- README


def readme_commands() -> list[str]:
    """Every command line of the README's bash blocks (continuations joined, comments dropped)."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", README.read_text(), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_readme_gives_the_commands_for_every_cluster_kind():
    commands = "\n".join(readme_commands())
    for expected in (
        "bash scripts/setup.sh",
        "ray get-auth-token --generate",
        "ray up -y cluster/ray-onprem.yaml",
        "ray up -y cluster/ray-aws.yaml",
        "ray down -y cluster/ray-aws.yaml",
        "sbatch cluster/slurm.sbatch",
        "docker build -f cluster/Dockerfile",
        "kubectl apply -f cluster/rayjob.yaml",
        "dvc repro",
    ):
        assert expected in commands, expected


def test_readme_names_every_cluster_file_and_only_existing_ones():
    text = README.read_text()
    mentioned = set(re.findall(r"cluster/[\w.-]+", text))
    on_disk = {f"cluster/{path.name}" for path in CLUSTER_DIR.iterdir() if path.is_file()}
    assert mentioned <= on_disk, mentioned - on_disk
    assert on_disk - {"cluster/README.md"} <= mentioned, on_disk - mentioned


def test_readme_mirrorset_commands_follow_the_contract():
    found = 0
    for line in readme_commands():
        words = shlex.split(line)
        command_starts = (i for i, word in enumerate(words) if word == "mirrorset" and (i == 0 or words[i - 1] in ("--", "&&", ";")))
        for start in command_starts:
            end = next((i for i in range(start, len(words)) if words[i] in ("&&", ";", "|")), len(words))
            check_mirrorset_command(words[start:end])
            found += 1
    assert found >= 5


def test_dvc_yaml_cmd_lines_are_runner_invocations_of_the_pipeline_commands():
    parser = load_run_stage().build_parser()
    dvc = yaml.safe_load((CLUSTER_DIR.parent / "dvc.yaml").read_text())
    cmds = []  # DVC's foreach expanded, other ${...} left as they are
    for stage in dvc["stages"].values():
        for item in (["simulated", "professional"] if "foreach" in stage else [None]):
            cmd = stage["do"]["cmd"] if item else stage["cmd"]
            cmds.append(cmd.replace("${item}", item) if item else cmd)
    commands = []
    for cmd in cmds:
        words = shlex.split(cmd)
        assert words[:2] == ["python", "cluster/run_stage.py"], cmd
        split = words.index("--")
        options = parser.parse_args(words[2:split])
        commands.append(check_mirrorset_command(words[split + 1 :]))
        assert (options.entrypoint_num_gpus == 1) == (commands[-1].command == "train"), cmd
        if commands[-1].command in ("build", "train"):
            assert commands[-1].config == "params.yaml", cmd  # the repository's params, not the package's
    steps = [(args.command, getattr(args, "stage", None)) for args in commands]
    assert steps == [("build", "ingest"), ("build", "detect"), ("build", "shards"), ("build", "shards"),
                     ("verify", None), ("train", None)]  # fmt: skip
    assert [args.subset for args in commands[2:4]] == ["simulated", "professional"]

"""cluster/run_stage.py: submission ids, local exec, and Ray jobs on a real local head (token auth on)."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.conftest import RUN_STAGE, load_run_stage
from tests.cluster.ray_head import RayHead

run_stage = load_run_stage()

PARAMS = {
    "seed": 0,
    "simulated": {"views": 8, "edits_per_face": 2, "augment": {"angles_deg": [-5.0, 0.0, 5.0]}},
    "cluster": {"num_workers": 2},
}

# The job the tests submit. "ray" joins the cluster the way `mirrorset build` does (Ray sets
# RAY_ADDRESS for job drivers) and runs a task that imports a module of the uploaded working dir.
JOB_SCRIPT = """\
import os, sys, time
mode = sys.argv[1]
if mode == "ray":
    import ray
    ray.init()
    @ray.remote(num_cpus=1)
    def probe():
        import stage_code
        return stage_code.VALUE, os.environ["MIRRORSET_TEST_VALUE"]
    print("task returned", *ray.get(probe.remote()), flush=True)
    open("written_by_job.txt", "w").write("x")
elif mode == "exit":
    print("exiting with", sys.argv[2], flush=True)
    open("written_by_job.txt", "w").write("x")
    sys.exit(int(sys.argv[2]))
elif mode == "sleep":
    print("started", flush=True)
    time.sleep(float(sys.argv[2]))
    print("slept", flush=True)
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A stage's working directory: params.yaml, the job script and a module with a unique value."""
    work = tmp_path / "repo"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    (work / "job.py").write_text(JOB_SCRIPT)
    (work / "stage_code.py").write_text(f"VALUE = {secrets.token_hex(8)!r}\n")
    return work


def runner_env(head: RayHead | None, **extra: str) -> dict[str, str]:
    """This environment without any RAY_* variable, plus RAY_ADDRESS of ``head`` and ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    if head is not None:
        env["RAY_ADDRESS"] = head.dashboard_url
    env.update(extra)
    return env


def run_runner(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN_STAGE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def job_client(head: RayHead):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(head.dashboard_url, headers={"Authorization": f"Bearer {head.token_path.read_text()}"})


def wait_until_running(head: RayHead, job_id: str, timeout: float = 60) -> None:
    """Until the job API says the job's command is running (its log reaches the runner later)."""
    client = job_client(head)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job_id in {job.submission_id for job in client.list_jobs()}:
            status = str(client.get_job_status(job_id))
            if status == "RUNNING":
                return
            assert status == "PENDING", status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not RUNNING within {timeout} s")


class LineReader:
    """Collects a child's stdout lines on a thread so a test can wait for one without blocking."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(process.stdout,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first line containing ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed within {timeout} s")


def start_runner(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen, LineReader]:
    process = subprocess.Popen(
        [sys.executable, str(RUN_STAGE), *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return process, LineReader(process)


# ----------------------------------------------------------------------------- submission ids


def test_submission_id_is_deterministic_and_depends_on_stage_command_and_params():
    command = ["mirrorset", "build", "--stage", "shards", "--subset", "simulated", "--out", "s3://b/x"]
    params = {"simulated": {"views": 8, "edits_per_face": 2}, "seed": 0}
    base = run_stage.submission_id("shards@simulated", command, params)
    assert base.startswith("mirrorset-shards_simulated-") and len(base.rsplit("-", 1)[1]) == 12
    reordered = {"seed": 0, "simulated": {"edits_per_face": 2, "views": 8}}
    assert run_stage.submission_id("shards@simulated", list(command), reordered) == base
    assert run_stage.submission_id("shards@professional", command, params) != base
    assert run_stage.submission_id("shards@simulated", command[:-1] + ["s3://b/y"], params) != base
    assert run_stage.submission_id("shards@simulated", command, {**params, "seed": 1}) != base
    assert run_stage.attempt_id(base, 1) == base and run_stage.attempt_id(base, 3) == f"{base}-a3"


def test_params_are_read_from_the_params_file_by_dotted_key(workdir: Path):
    values = run_stage.read_params(workdir / "params.yaml", ["simulated.augment", "cluster"])
    assert values == {"simulated.augment": PARAMS["simulated"]["augment"], "cluster": PARAMS["cluster"]}
    with pytest.raises(ValueError, match="simulated.view: no such key"):
        run_stage.read_params(workdir / "params.yaml", ["simulated.view"])


def test_a_changed_params_section_changes_the_id_parsed_from_the_command_line(workdir: Path, monkeypatch):
    monkeypatch.chdir(workdir)
    argv = ["shards", "--params", "simulated", "--", "mirrorset", "build", "--stage", "shards"]
    before = run_stage.parse_args(argv).base_id
    assert run_stage.parse_args(argv).base_id == before
    changed = {**PARAMS, "simulated": {**PARAMS["simulated"], "views": 16}}
    (workdir / "params.yaml").write_text(yaml.safe_dump(changed))
    after = run_stage.parse_args(argv).base_id
    assert after != before
    unrelated = {**changed, "cluster": {"num_workers": 8}}  # a section this stage does not hash
    (workdir / "params.yaml").write_text(yaml.safe_dump(unrelated))
    assert run_stage.parse_args(argv).base_id == after


def test_command_line_errors_are_refused(workdir: Path):
    for args, message in (
        (["build", "mirrorset", "verify"], "the '--' before the command is required"),
        (["build", "--params", "nope", "--", "true"], "--params nope: no such key"),
        (["build", "--"], "no command after '--'"),
        (["build", "--env", "MIRRORSET_SURELY_UNSET", "--", "true"], "MIRRORSET_SURELY_UNSET"),
    ):
        result = run_runner(args, workdir, runner_env(None))
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


# ----------------------------------------------------------------------------- without RAY_ADDRESS


def test_without_ray_address_the_command_runs_here_with_its_exit_code(workdir: Path):
    result = run_runner(["exit", "--", "python", "job.py", "exit", "7"], workdir, runner_env(None))
    assert result.returncode == 7
    assert "exiting with 7" in result.stdout
    assert (workdir / "written_by_job.txt").exists()  # it ran here, in this directory


def test_without_ray_address_signals_reach_the_command_itself(workdir: Path):
    handler = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))\n"
        "print('pid', os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
    )
    process, reader = start_runner(["local", "--", "python", "-c", handler], workdir, runner_env(None))
    assert reader.wait_for("pid").split() == ["pid", str(process.pid)]  # exec: the command *is* the runner process
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 42


def test_an_unknown_command_exits_127(workdir: Path):
    result = run_runner(["x", "--", "mirrorset-no-such-command"], workdir, runner_env(None))
    assert result.returncode == 127 and "cannot run 'mirrorset-no-such-command'" in result.stderr


# ----------------------------------------------------------------------------- as Ray jobs


@pytest.mark.ray
def test_a_succeeding_job_returns_0_runs_the_uploaded_code_on_workers_and_streams_its_log(
    head: RayHead, workdir: Path, tmp_path: Path
):
    home = tmp_path / "home"  # the token is found at ~/.ray/auth_token, as Ray's default
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(head.token_path.read_text())
    command = ["python", "job.py", "ray"]
    # RAY_ADDRESS as the GCS address, which `mirrorset build` run by hand also takes: the job API's
    # URL is then looked up in the cluster (over gRPC, which needs the token as well).
    env = runner_env(head, RAY_ADDRESS=head.gcs_address, HOME=str(home), MIRRORSET_TEST_VALUE="passed-through")
    result = run_runner(["build", "--params", "simulated", "--env", "MIRRORSET_TEST_VALUE", "--", *command], workdir, env)

    assert result.returncode == 0, result.stderr
    value = (workdir / "stage_code.py").read_text().split("'")[1]
    assert f"task returned {value} passed-through" in result.stdout
    job_id = run_stage.submission_id("build", command, {"simulated": PARAMS["simulated"]})
    assert f"submitted job {job_id}" in result.stderr
    assert str(job_client(head).get_job_status(job_id)) == "SUCCEEDED"
    assert not (workdir / "written_by_job.txt").exists()  # it ran in Ray's copy of the directory


@pytest.mark.ray
def test_a_failing_job_returns_its_exit_code_and_a_rerun_is_a_new_attempt(head: RayHead, workdir: Path):
    command = ["python", "job.py", "exit", "3"]
    env = runner_env(head, RAY_AUTH_TOKEN_PATH=str(head.token_path))
    first = run_runner(["fails", "--params", "seed", "--", *command], workdir, env)
    assert not (workdir / "written_by_job.txt").exists()  # it ran in Ray's copy of the directory
    # The rerun runs in place: where a job runs is not part of its id, so this is attempt 2.
    second = run_runner(["fails", "--params", "seed", "--in-place", "--", *command], workdir, env)
    assert (workdir / "written_by_job.txt").exists()

    base = run_stage.submission_id("fails", command, {"seed": 0})
    assert (first.returncode, second.returncode) == (3, 3), (first.stderr, second.stderr)
    assert "exiting with 3" in first.stdout and "exiting with 3" in second.stdout
    assert f"submitted job {base}\n" in first.stderr and f"submitted job {base}-a2\n" in second.stderr
    jobs = {job.submission_id: job for job in job_client(head).list_jobs()}
    for job_id in (base, f"{base}-a2"):
        assert (str(jobs[job_id].status), jobs[job_id].driver_exit_code) == ("FAILED", 3)


@pytest.mark.ray
def test_sigint_or_sigterm_to_the_runner_stops_the_job_whose_log_it_was_streaming(head: RayHead, workdir: Path):
    env = runner_env(head, RAY_AUTH_TOKEN=head.token_path.read_text())
    command = ["python", "job.py", "sleep", "120"]
    runners = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):  # both at once, to keep the test short
            job_id = run_stage.submission_id(f"interrupted-{sig.name}", command, {})
            runners[sig] = (job_id, *start_runner([f"interrupted-{sig.name}", "--", *command], workdir, env))
        for job_id, _, reader in runners.values():
            wait_until_running(head, job_id)
            reader.wait_for("started")  # streamed while the job runs, not printed at its end
        for sig, (_, process, _) in runners.items():
            process.send_signal(sig)
        for sig, (job_id, process, _) in runners.items():
            assert process.wait(timeout=60) == 128 + sig
            assert f"{sig.name}: stopping job {job_id}" in process.stderr.read()
            assert str(job_client(head).get_job_status(job_id)) == "STOPPED"
    finally:
        for _, process, _ in runners.values():
            process.kill()


@pytest.mark.ray
def test_a_rerun_attaches_to_a_job_its_dead_runner_left_running(head: RayHead, workdir: Path):
    env = runner_env(head, RAY_AUTH_TOKEN_PATH=str(head.token_path))
    command = ["python", "job.py", "sleep", "6"]
    job_id = run_stage.submission_id("orphan", command, {})
    orphaning, _ = start_runner(["orphan", "--", *command], workdir, env)
    wait_until_running(head, job_id)
    orphaning.kill()  # SIGKILL: no chance to stop the job
    orphaning.wait(timeout=30)

    rerun = run_runner(["orphan", "--", *command], workdir, env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"attaching to RUNNING job {job_id}" in rerun.stderr
    assert "started" in rerun.stdout and "slept" in rerun.stdout  # the whole log, once
    assert rerun.stdout.count("started") == 1
    ids = [job.submission_id for job in job_client(head).list_jobs()]
    assert [i for i in ids if i.startswith(job_id)] == [job_id]


@pytest.mark.ray
def test_without_a_token_the_cluster_refuses_and_nothing_runs(head: RayHead, workdir: Path, tmp_path: Path):
    result = run_runner(["no-token", "--", "python", "job.py", "exit", "0"], workdir, runner_env(head, HOME=str(tmp_path)))
    assert result.returncode == 2
    assert "Authentication" in result.stderr

"""A real single-node Ray head for the stage-runner tests: token auth on, free ports, private temp dir.

Started with ``ray start --head --block`` in its own session, the way the cluster files start one
(job drivers inherit its environment: the venv first on PATH, the token). Stopped by SIGTERM to
that process, then SIGKILL to what is left of its process group; never ``ray stop``, which would stop
every Ray on the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psutil
import requests

PORT_OPTIONS = (
    "port",
    "dashboard-port",
    "node-manager-port",
    "object-manager-port",
    "ray-client-server-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)


@dataclass(frozen=True)
class RayHead:
    dashboard_url: str  # http://127.0.0.1:PORT, the job API
    gcs_address: str  # 127.0.0.1:PORT, what `ray.init` and `ray start --address` take
    token_path: Path  # the token the head requires (RAY_AUTH_MODE=token)


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def ray_head(num_cpus: int = 1, start_timeout_s: float = 90.0) -> Iterator[RayHead]:
    root = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # short: Ray's socket paths have a limit
    token_path = root / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    ports = {name: free_port() for name in PORT_OPTIONS}
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",  # job entrypoints call `python`, `ray`
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token_path),
        RAY_USAGE_STATS_ENABLED="0",
    )
    args = [
        str(Path(venv_bin) / "ray"), "start", "--head", "--block",
        f"--num-cpus={num_cpus}", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
        "--include-dashboard=true", f"--temp-dir={root / 'ray'}", "--disable-usage-stats",
        *(f"--{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    log = open(root / "ray-start.log", "wb")
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    head = RayHead(
        dashboard_url=f"http://127.0.0.1:{ports['dashboard-port']}",
        gcs_address=f"127.0.0.1:{ports['port']}",
        token_path=token_path,
    )
    try:
        _wait_for_job_api(head, process, root, start_timeout_s)
        yield head
    finally:
        _stop(process, root)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_job_api(head: RayHead, process: subprocess.Popen, root: Path, timeout_s: float) -> None:
    """Poll the job API (with the token) until it answers; fail with the head's log if it dies."""
    headers = {"Authorization": f"Bearer {head.token_path.read_text()}"}
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            log = (root / "ray-start.log").read_text()
            raise RuntimeError(f"ray start exited {process.returncode}:\n{log}")
        try:
            if requests.get(f"{head.dashboard_url}/api/jobs/", headers=headers, timeout=5).ok:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Ray job API at {head.dashboard_url} is not up after {timeout_s} s")
        time.sleep(0.5)


def _stop(process: subprocess.Popen, root: Path) -> None:
    """SIGTERM ``ray start --block`` (it stops its node), then kill what is left of its group and
    anything else still running from its temp dir."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    marker = str(root)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or ()):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass

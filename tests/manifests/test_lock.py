"""One build per output root: contention, crashed holders, heartbeats, lost locks, and
the object-store variant against an S3 server (moto) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from manifests.lock import LockHeld, LockLost, OutputLock

REPO = Path(__file__).resolve().parents[2]

#: The socket functions as they are when this module is collected. The session-scoped
#: ``no_network`` fixture of tests/detectors/conftest.py replaces them for the rest of the
#: session once it has run; the S3 server and client here need loopback connections.
LOOPBACK = {"getaddrinfo": socket.getaddrinfo, "create_connection": socket.create_connection}
LOOPBACK_CONNECT = socket.socket.connect

#: A build stand-in: takes the lock, says so, then checks it until it is lost.
HOLDER = """
import json, sys, time
from manifests.lock import LockLost, OutputLock
lock = OutputLock(sys.argv[1], stale_after_s=float(sys.argv[2]), heartbeat_s=float(sys.argv[3]),
                  storage_options=json.loads(sys.argv[4]), settle_s=0.2)
lock.acquire()
print("held", flush=True)
while True:
    time.sleep(0.05)
    try:
        lock.check()
    except LockLost as exc:
        print(exc, flush=True)
        break
"""


class Holder:
    """A subprocess holding the lock on ``root``."""

    def __init__(self, root: str, stale_after_s: float, heartbeat_s: float, options: dict[str, Any]) -> None:
        args = [root, str(stale_after_s), str(heartbeat_s), json.dumps(options)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, *args], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline().strip()
        assert line == "held", self.proc.stderr.read()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.close()


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """An S3 server (moto) on a free port with bucket ``locks``; yields fsspec storage options."""
    import boto3
    from moto.server import ThreadedMotoServer

    patch = pytest.MonkeyPatch()
    for name, function in LOOPBACK.items():
        patch.setattr(socket, name, function)
    patch.setattr(socket.socket, "connect", LOOPBACK_CONNECT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket="locks")  # fmt: skip
    yield {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    server.stop()
    patch.undo()


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """An output root and its storage options, on local disk or on the S3 server."""
    if request.param == "local":
        return str(tmp_path / "out"), {}
    return f"s3://locks/{request.node.name.replace('[', '-').rstrip(']')}", request.getfixturevalue("s3")


def test_second_build_is_refused_with_the_holders_host_pid_and_age(root, holders) -> None:
    url, options = root
    holder = Holder(url, 60, 0.2, options)
    holders.append(holder)
    with pytest.raises(LockHeld) as info:
        OutputLock(url, stale_after_s=60, storage_options=options, settle_s=0).acquire()
    message = str(info.value)
    assert f"pid {holder.proc.pid} on host {socket.gethostname()}" in message
    age = re.search(r"last heartbeat (\d+) s ago", message)
    assert age is not None and int(age.group(1)) <= 5  # a live holder's heartbeat (every 0.2 s), not 60 s old
    assert info.value.holder.pid == holder.proc.pid


def test_crashed_holder_is_taken_over_at_once_on_its_host(root, holders) -> None:
    url, options = root
    holder = Holder(url, 600, 0.2, options)
    holders.append(holder)
    holder.kill()  # SIGKILL: no release, the records stay behind
    lock = OutputLock(url, stale_after_s=600, storage_options=options, settle_s=0)
    assert lock.read_holder().pid == holder.proc.pid
    with lock:
        assert lock.took_over is not None
        assert f"pid {holder.proc.pid} no longer runs on this host" in lock.took_over
        assert lock.read_holder().token == lock.token
    assert lock.read_holder() is None  # released


def test_heartbeat_keeps_a_live_lock_and_a_silent_one_is_taken_over_and_lost(root, holders) -> None:
    url, options = root
    holder = Holder(url, 1.0, 0.2, options)
    holders.append(holder)
    time.sleep(2.0)  # twice the staleness limit: only the heartbeat keeps it fresh
    contender = OutputLock(url, stale_after_s=1.0, heartbeat_s=0.2, storage_options=options, settle_s=0)
    with pytest.raises(LockHeld):
        contender.acquire()
    assert contender.read_holder().age_s(time.time()) < 1.0
    holder.proc.send_signal(signal.SIGSTOP)  # alive but silent, like a hung or partitioned build
    time.sleep(1.5)
    with contender:
        assert re.search(r"its last heartbeat is \d+ s old \(limit 1 s\)$", contender.took_over)
        holder.proc.send_signal(signal.SIGCONT)
        lost = holder.proc.stdout.readline()  # its next beat finds the new owner's token
        assert lost.startswith(f"lost the lock on {contender.root}: its record now names pid {os.getpid()}")
        contender.check()


def contend(locks: list[OutputLock]) -> list[int]:
    """Acquire all ``locks`` at once from threads; the indices that got the lock."""
    winners: list[int] = []
    barrier = threading.Barrier(len(locks))

    def take(n: int) -> None:
        barrier.wait()
        try:
            locks[n].acquire()
        except LockHeld:
            return
        winners.append(n)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(len(locks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return winners


def test_exactly_one_of_simultaneous_contenders_wins(root) -> None:
    url, options = root
    locks = [OutputLock(url, stale_after_s=60, storage_options=options, settle_s=0.5) for _ in range(4)]
    winners = contend(locks)
    assert len(winners) == 1, winners
    assert locks[winners[0]].read_holder().token == locks[winners[0]].token
    locks[winners[0]].release()


def test_read_back_leaves_one_owner_when_creates_race(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store without conditional puts, in the worst case: every contender found the root
    unlocked before any of them wrote. Only the read-back after ``settle_s`` decides."""
    from manifests.lock import _FsspecStore

    all_checked = threading.Barrier(4)

    def racing_create(store: _FsspecStore, name: str, data: bytes) -> bool:
        all_checked.wait()
        store.write(name, data)
        return True

    monkeypatch.setattr(_FsspecStore, "create", racing_create)
    locks = [OutputLock("memory://locks/race", stale_after_s=60, settle_s=0.5) for _ in range(4)]
    winners = contend(locks)
    assert len(winners) == 1, winners
    assert locks[winners[0]].read_holder().token == locks[winners[0]].token
    locks[winners[0]].release()


def test_release_of_a_lock_taken_over_leaves_the_new_owner_alone(tmp_path: Path) -> None:
    first = OutputLock(tmp_path, stale_after_s=0.4, heartbeat_s=0.2).acquire()
    first.heartbeat_s = 1.2  # after its next beat it falls silent for longer than 0.4 s
    time.sleep(0.8)
    second = OutputLock(tmp_path, stale_after_s=0.4, heartbeat_s=0.2).acquire()
    assert "heartbeat" in second.took_over
    time.sleep(1.0)  # first's next beat finds second's token
    with pytest.raises(LockLost, match="its record now names"):
        first.check()
    first.release()
    assert second.read_holder().token == second.token
    second.release()
    assert second.read_holder() is None

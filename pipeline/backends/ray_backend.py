"""Ray backend: a pull-based pool of stage actors that outlives worker faults.

The only module of mirrorset that imports Ray. Without ``address`` (and without
``RAY_ADDRESS``) it starts a private local Ray with ``num_workers`` CPUs, no dashboard
and worker logs kept out of the driver's output, and shuts it down on ``close()``. With
an address it joins that cluster, ships the project's code to its workers through
``runtime_env`` (:func:`code_runtime_env`), and leaves the cluster running.

Written by hand because Ray's own mechanisms do not cover what a build needs: actor
restarts (``max_restarts``/``max_task_retries``) retry a call on the *same* actor once
it is back, calls made meanwhile fail with ``ActorUnavailableError``, Ray has no
per-task time limit for actor calls (a running call cannot be cancelled, only its actor
killed), no backoff, and ``ray.util.ActorPool`` keeps handing work to dead actors. So:

- Each actor runs ``stage.setup()`` once and joins the pool only when that has finished
  (a start that fails or exceeds ``worker_start_timeout_s`` is replaced, at most
  :data:`MAX_START_FAILURES` times in a row; then the remaining batches fail with the
  start error).
- Dispatch is pull-based: an idle actor takes the next batch, one at a time, so a slow
  batch delays the end of a stage by at most its own length.
- An exception raised by the stage fails the attempt and keeps the actor. Any other
  error (actor died, OOM-killed by Ray's memory monitor, unavailable, worker crashed,
  result lost, fetch timed out, ...) fails the attempt and retires the actor
  (``ray.kill``, no restart); a fresh actor replaces it, and every idle actor must answer
  a health check before it gets more work (so actors lost with the same node cost no
  attempts). An attempt running past ``task_timeout_s`` fails and its actor is killed.
- Failed attempts are retried per :class:`~pipeline.backends.retry.RetryPolicy`,
  on whichever actor is idle once the backoff has elapsed. Every wait has a timeout.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Generator, Iterable, Iterator

import ray
from ray.exceptions import (
    ActorUnavailableError,
    GetTimeoutError,
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayActorError,
    RayTaskError,
    WorkerCrashedError,
)

from pipeline.backends import WorkersUnavailable
from pipeline.backends.retry import Attempt, BatchOutcome, RetryPolicy, RetryQueue, last_line
from pipeline.stage import Stage

log = logging.getLogger(__name__)

#: The project's packages: what a cluster's workers import (shipped as ``py_modules``).
CODE_PACKAGES = ("pipeline", "warps", "detectors", "manifests", "benchmarks")
#: Never uploaded with the packages: caches and half-written files.
CODE_EXCLUDES = ["__pycache__", "*.pyc", "*.pyo", "*.partial", ".pytest_cache"]
#: Consecutive failed actor starts after which a stage gives up.
MAX_START_FAILURES = 3
#: Longest single wait of the driver loop; every wait is bounded.
_POLL_S = 10.0
#: Bound on fetching a result that Ray already reports as ready.
_GET_TIMEOUT_S = 120.0
#: Bound on reaching a cluster's address before handing it to ``ray.init``.
_CONNECT_TIMEOUT_S = 10.0


def code_runtime_env() -> dict[str, Any]:
    """The ``runtime_env`` that puts this checkout's (or installation's) packages on workers.

    Only the package directories travel (``py_modules``), never the repository root, so
    ``.venv``, ``.git``, outputs, tests and models stay home; Ray zips them (minus
    :data:`CODE_EXCLUDES` and ``.gitignore``/``.rayignore`` matches inside them), names the
    zip by its content hash and uploads it once per cluster. Third-party libraries and model
    weights are not shipped: every node needs the same pinned environment.
    """
    paths = []
    for name in CODE_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise WorkersUnavailable(f"cannot ship package {name!r} to Ray workers: it is not importable here")
        paths.append(str(next(iter(spec.submodule_search_locations))))
    return {"py_modules": paths, "excludes": list(CODE_EXCLUDES)}


def _unreachable(address: str, timeout_s: float = _CONNECT_TIMEOUT_S) -> str:
    """Why nothing accepts TCP connections at ``address`` (``host:port`` or
    ``ray://host:port``), or "" if something does or the address is not of that form."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return ""  # "auto" and the like: Ray resolves them itself
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return ""
    except OSError as exc:
        return f"nothing accepts connections at {host}:{port} ({exc})"


class _StageActor:
    """Holds one stage instance for the actor's lifetime."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        stage.setup()

    def where(self) -> str:
        return f"pid {os.getpid()} on {ray.util.get_node_ip_address()}"

    def process(self, items: list[Any]) -> list[Any]:
        return self.stage.process_batch(items)

    def teardown(self) -> None:
        self.stage.teardown()


class RayBackend:
    """``num_workers`` stage actors per run (see the module docstring for faults).

    ``ship_code``: send :func:`code_runtime_env` to the workers (None: only when joining a
    cluster). Nothing is shipped when Ray was initialised by the caller.
    """

    def __init__(
        self,
        *,
        num_workers: int,
        address: str | None = None,
        worker_start_timeout_s: float | None = 600.0,
        teardown_timeout_s: float = 60.0,
        ship_code: bool | None = None,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if worker_start_timeout_s is not None and worker_start_timeout_s <= 0:
            raise ValueError(f"worker_start_timeout_s must be > 0 or None, got {worker_start_timeout_s}")
        self.num_workers = num_workers
        self.worker_start_timeout_s = worker_start_timeout_s
        self.teardown_timeout_s = teardown_timeout_s
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._started_here = not ray.is_initialized()
        if not self._started_here:
            return
        ship = bool(address) if ship_code is None else ship_code
        options: dict[str, Any] = dict(
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=code_runtime_env() if ship else None,
        )
        if not address:
            ray.init(address="local", num_cpus=num_workers, **options)  # never join a head that ray start left running
            return
        problem = _unreachable(address)
        if problem:  # ray.init would retry for minutes
            raise WorkersUnavailable(f"cannot join the Ray cluster at {address!r}: {problem}")
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            raise WorkersUnavailable(f"cannot join the Ray cluster at {address!r}: {exc}") from exc

    def run(
        self,
        stage: Stage,
        batches: Iterable[tuple[int, list[Any]]],
        *,
        workers: int | None = None,
        retry: RetryPolicy = RetryPolicy(),
        task_timeout_s: float | None = None,
    ) -> Generator[BatchOutcome, None, None]:
        count = self.num_workers if workers is None else workers
        if count < 1:
            raise ValueError(f"workers must be >= 1, got {count}")
        if task_timeout_s is not None and task_timeout_s <= 0:
            raise ValueError(f"task_timeout_s must be > 0 or None, got {task_timeout_s}")
        queue = RetryQueue(batches, retry)
        if queue.exhausted():
            return  # no actor is started (and no model loaded) for an empty stream
        actor_cls = ray.remote(
            num_cpus=stage.resources.cpus, num_gpus=stage.resources.gpus, max_restarts=0, max_task_retries=0
        )(_StageActor)
        pool = _Pool(actor_cls, stage, count, self.worker_start_timeout_s)
        try:
            yield from pool.drive(queue, task_timeout_s)
        finally:
            pool.shutdown(self.teardown_timeout_s)

    def close(self) -> None:
        if self._started_here and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> "RayBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(eq=False)
class _Worker:
    """One actor of the pool. ``where`` is empty until its ``stage.setup()`` has finished;
    ``deadline`` bounds what it is doing now (a start, a health check or an attempt)."""

    actor: Any
    number: int
    where: str = ""
    attempt: Attempt | None = None
    deadline: float | None = None

    def describe(self) -> str:
        return f"worker {self.number} ({self.where or 'starting'})"


class _Pool:
    """The actors of one stage run, each in one state: *checking* (starting, or answering a
    health check), *idle*, or *running* one attempt."""

    def __init__(self, actor_cls: Any, stage: Stage, size: int, start_timeout_s: float | None) -> None:
        self.actor_cls = actor_cls
        self.stage = stage
        self.size = size
        self.start_timeout_s = start_timeout_s
        self.checking: dict[Any, _Worker] = {}  # ref of ``where()`` -> worker
        self.running: dict[Any, _Worker] = {}  # ref of ``process()`` -> worker
        self.idle: deque[_Worker] = deque()
        self.started = 0
        self.start_failures = 0  # in a row; reset when an actor becomes ready
        self.last_start_error = ""

    @property
    def live(self) -> int:
        return len(self.checking) + len(self.running) + len(self.idle)

    def drive(self, queue: RetryQueue, task_timeout_s: float | None) -> Iterator[BatchOutcome]:
        """Run ``queue`` to the end; yields every attempt's outcome."""
        while True:
            if not queue.exhausted():
                self._top_up()
            yield from self._dispatch(queue, task_timeout_s)
            if not self.running and queue.exhausted():
                return
            if not self.live:
                yield from queue.abandon(
                    f"{self.last_start_error}\nWorkersUnavailable: no worker of stage {self.stage.name!r} "
                    f"could start ({self.start_failures} failed starts in a row)"
                )
                return
            yield from self._await_events(queue, task_timeout_s)

    def shutdown(self, teardown_timeout_s: float) -> None:
        """``stage.teardown()`` on idle actors (bounded wait), then kill every actor."""
        teardowns = {w.actor.teardown.remote(): w for w in self.idle}
        if teardowns:
            done, late = ray.wait(list(teardowns), num_returns=len(teardowns), timeout=teardown_timeout_s)
            for ref in done:
                try:
                    ray.get(ref, timeout=_GET_TIMEOUT_S)
                except Exception:  # outputs are committed; a failed teardown must not hide them
                    log.warning("stage %r: teardown failed on %s", self.stage.name, teardowns[ref].describe(), exc_info=True)
            for ref in late:
                log.warning("stage %r: %s did not tear down within %g s", self.stage.name, teardowns[ref].describe(), teardown_timeout_s)
        for worker in [*self.idle, *self.running.values(), *self.checking.values()]:
            ray.kill(worker.actor, no_restart=True)
        self.idle.clear()
        self.running.clear()
        self.checking.clear()

    def _top_up(self) -> None:
        while self.live < self.size and self.start_failures < MAX_START_FAILURES:
            self.started += 1
            worker = _Worker(self.actor_cls.remote(self.stage), self.started)
            if self.start_timeout_s is not None:
                worker.deadline = time.monotonic() + self.start_timeout_s
            self.checking[worker.actor.where.remote()] = worker

    def _check_idle(self) -> None:
        """After a worker fault, ask every idle actor whether it is alive before it gets work,
        so that actors lost with the same node cost no attempts."""
        while self.idle:
            worker = self.idle.popleft()
            worker.deadline = time.monotonic() + _GET_TIMEOUT_S
            self.checking[worker.actor.where.remote()] = worker

    def _dispatch(self, queue: RetryQueue, task_timeout_s: float | None) -> list[BatchOutcome]:
        outcomes = []
        while self.idle:
            attempt = queue.take()
            if attempt is None:
                break
            worker = self.idle.popleft()
            try:
                ref = worker.actor.process.remote(attempt.items)
            except Exception as exc:  # the batch cannot be serialised: its attempt fails, the actor is fine
                self.idle.appendleft(worker)
                outcomes.append(queue.failed(attempt, _describe(exc), worker.describe()))
                continue
            worker.attempt = attempt
            worker.deadline = None if task_timeout_s is None else time.monotonic() + task_timeout_s
            self.running[ref] = worker
        return outcomes

    def _await_events(self, queue: RetryQueue, task_timeout_s: float | None) -> list[BatchOutcome]:
        """Wait (bounded) for the next reply or deadline; the outcomes that brings."""
        refs = [*self.checking, *self.running]
        timeout = self._next_wakeup_s(queue)
        ready: list[Any] = []
        if refs:
            ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
            if ready and rest:  # take every other reply that is already in, too
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        else:  # only idle actors, waiting for a retry's backoff
            time.sleep(timeout)
        outcomes = [outcome for ref in ready for outcome in self._collect(ref, queue)]
        return outcomes + self._expire(queue, task_timeout_s)

    def _next_wakeup_s(self, queue: RetryQueue) -> float:
        now = time.monotonic()
        workers = [*self.checking.values(), *self.running.values()]
        candidates = [_POLL_S] + [w.deadline - now for w in workers if w.deadline is not None]
        due = queue.wait_s()
        if due is not None and self.idle:
            candidates.append(due)
        return max(0.0, min(candidates))

    def _collect(self, ref: Any, queue: RetryQueue) -> list[BatchOutcome]:
        if ref in self.checking:
            worker = self.checking.pop(ref)
            worker.deadline = None
            try:
                where = ray.get(ref, timeout=_GET_TIMEOUT_S)
            except Exception as exc:  # setup raised, code upload failed, unschedulable, or died while idle
                self._check_failed(worker, _describe(exc))
                return []
            if not worker.where:
                self.start_failures = 0
            worker.where = where
            self.idle.append(worker)
            return []
        worker = self.running.pop(ref)
        attempt = worker.attempt
        worker.attempt = worker.deadline = None
        try:
            results = ray.get(ref, timeout=_GET_TIMEOUT_S)
        except RayTaskError as exc:  # the stage raised; the actor is healthy
            self.idle.append(worker)
            return [queue.failed(attempt, _describe(exc), worker.describe())]
        except Exception as exc:  # every other failure is the worker's: died, OOM, unavailable, lost, ...
            self._retire(worker)
            self._check_idle()
            return [queue.failed(attempt, _worker_fault(exc, worker), worker.describe())]
        self.idle.append(worker)
        return [queue.succeeded(attempt, results, worker.describe())]

    def _expire(self, queue: RetryQueue, task_timeout_s: float | None) -> list[BatchOutcome]:
        now = time.monotonic()
        outcomes = []
        for ref, worker in list(self.running.items()):
            if worker.deadline is not None and now >= worker.deadline:
                del self.running[ref]
                attempt = worker.attempt
                self._retire(worker)
                error = (
                    f"TaskTimeout: no result from {worker.describe()} after {task_timeout_s:g} s; "
                    "the worker was killed and the batch goes to another worker"
                )
                outcomes.append(queue.failed(attempt, error, worker.describe()))
        for ref, worker in list(self.checking.items()):
            if worker.deadline is not None and now >= worker.deadline:
                del self.checking[ref]
                self._check_failed(
                    worker,
                    f"HealthCheckTimeout: {worker.describe()} did not answer within {_GET_TIMEOUT_S:g} s"
                    if worker.where
                    else f"StartTimeout: {worker.describe()} was not ready after {self.start_timeout_s:g} s",
                )
        return outcomes

    def _check_failed(self, worker: _Worker, error: str) -> None:
        """Retire ``worker``; a failed start counts towards giving up, a failed health check does not."""
        self._retire(worker)
        if worker.where:
            log.warning("stage %r: %s was found dead while idle: %s", self.stage.name, worker.describe(), last_line(error))
            return
        self.start_failures += 1
        self.last_start_error = (
            f"{error}\nWorkerStartFailed: {worker.describe()} of stage {self.stage.name!r} could not start "
            f"(scheduling, code upload or stage.setup() failed): {last_line(error)}"
        )
        log.warning("%s", last_line(self.last_start_error))

    def _retire(self, worker: _Worker) -> None:
        ray.kill(worker.actor, no_restart=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: What each Ray failure means for the worker, most specific first.
_FAULTS: tuple[tuple[type[BaseException], str], ...] = (
    (OutOfMemoryError, "was killed by Ray's memory monitor (its node ran low on memory)"),
    (ActorUnavailableError, "became unreachable or is restarting"),
    (NodeDiedError, "lost its node"),
    (RayActorError, "died during the task (a signal, the kernel's OOM killer, a crash, or its node's loss)"),
    (WorkerCrashedError, "crashed during the task"),
    (ObjectLostError, "finished but its result was lost (its node or object store failed)"),
    (GetTimeoutError, f"finished but its result could not be fetched within {_GET_TIMEOUT_S:g} s"),
)


def _worker_fault(exc: Exception, worker: _Worker) -> str:
    """Ray's text, then one line ``Type: which worker, what happened``."""
    meaning = next((text for kind, text in _FAULTS if isinstance(exc, kind)), f"failed: {last_line(str(exc))}")
    return f"{_describe(exc)}\n{type(exc).__name__}: {worker.describe()} {meaning}"


def _describe(exc: BaseException) -> str:
    return _ANSI.sub("", f"{type(exc).__name__}: {exc}")[-4000:]

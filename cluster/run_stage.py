"""Run one DVC stage's command here, or on a Ray cluster as a Ray job when ``RAY_ADDRESS`` is set.

Usage (a ``cmd:`` line of dvc.yaml)::

    python cluster/run_stage.py STAGE [--params KEY]... [options] -- COMMAND [ARG]...

Without ``RAY_ADDRESS`` the command replaces this process (``exec``): same exit code, signals
reach it directly. With ``RAY_ADDRESS`` (any form Ray accepts: ``http://HEAD:8265``,
``ray://HEAD:10001``, ``HEAD:6379``; ``RAY_API_SERVER_ADDRESS`` overrides it, as in Ray) it is
submitted through ``ray.job_submission.JobSubmissionClient``:

- The submission id is ``mirrorset-<stage>-<12 hex>``: sha256 of the stage name, the command's
  argv and the value of every ``--params`` key in the params file (canonical JSON, so key order and
  formatting don't matter). Resources, ``--env``, ``--in-place`` and the code are not hashed: they
  say where and how the stage runs, not what it computes.
- An earlier job with that id that is still PENDING or RUNNING (its runner died without stopping
  it) is attached to, not duplicated. After a finished one (SUCCEEDED, FAILED or STOPPED) the next
  attempt is submitted as ``<id>-a2``, ``<id>-a3``, ...
- The current directory goes to the cluster as the job's ``runtime_env`` ``working_dir`` (Ray
  honours ``.gitignore``; ``.git`` and ``.venv`` are always left out), so the job and every task or
  actor it starts import this checkout's code. The job runs in Ray's unpacked copy of it, unless
  ``--in-place`` (or ``MIRRORSET_JOB_IN_PLACE=1``) runs it in this directory's absolute path, for
  clusters where every node sees it at that path (a shared filesystem, or dvc on the head node).
- The job's log is streamed to stdout until it ends. The exit status comes from the job status API,
  never from ``ray job logs`` (which exits 0 for failed jobs): SUCCEEDED is 0, FAILED is the
  command's exit code (1 when the job failed before the command ran), STOPPED from elsewhere is 143.
- SIGINT or SIGTERM stops the job (``stop_job``), waits until Ray reports it ended, and exits
  128 + the signal number.
- Ray token authentication: when ``RAY_AUTH_MODE`` is unset and a token exists (``RAY_AUTH_TOKEN``,
  the file ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, Ray's own order), the runner sends it.

Exit status 2 means the job API could not be reached, refused the token or refused the job;
nothing ran (or, after a lost connection, the job may still be running: a rerun attaches to it).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, Sequence

import yaml

ID_PREFIX = "mirrorset"
IN_PLACE_ENV = "MIRRORSET_JOB_IN_PLACE"
ALWAYS_EXCLUDED = (".git", ".venv")
STOPPED_EXIT_CODE = 128 + signal.SIGTERM
UNREACHABLE_EXIT_CODE = 2
STOP_WAIT_S = 60.0
MAX_RECONNECTS = 8
STATUS_POLL_S = 0.5


@dataclass(frozen=True)
class StageRun:
    """One stage invocation: what runs (hashed into the id) and how (not hashed)."""

    stage: str
    command: tuple[str, ...]
    params: dict[str, Any]
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    env: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    in_place: bool = False

    @property
    def base_id(self) -> str:
        return submission_id(self.stage, self.command, self.params)


def submission_id(stage: str, command: Sequence[str], params: dict[str, Any]) -> str:
    """``mirrorset-<stage>-<12 hex>``; the hex is sha256 of canonical JSON of (stage, argv, params)."""
    record = {"stage": stage, "command": list(command), "params": params}
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", stage).strip("_") or "stage"
    return f"{ID_PREFIX}-{slug}-{digest}"


def attempt_id(base: str, attempt: int) -> str:
    """The id of the ``attempt``-th submission (1-based): ``base``, then ``base-a2``, ..."""
    return base if attempt == 1 else f"{base}-a{attempt}"


def read_params(path: Path, keys: Sequence[str]) -> dict[str, Any]:
    """``{key: value}`` for dotted ``keys`` (``simulated``, ``cluster.num_workers``) of a YAML file."""
    if not keys:
        return {}
    if not path.is_file():
        raise ValueError(f"params file {path} not found (needed by --params)")
    document = yaml.safe_load(path.read_text()) or {}
    values: dict[str, Any] = {}
    for key in keys:
        node: Any = document
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"--params {key}: no such key in {path}")
            node = node[part]
        values[key] = node
    return values


def parse_args(argv: Sequence[str]) -> StageRun:
    parser = build_parser()
    argv = list(argv)
    if "--" not in argv:
        parser.error("the '--' before the command is required")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    args = parser.parse_args(options)
    if not command:
        parser.error("no command after '--'")
    missing = [name for name in args.env if name not in os.environ]
    if missing:
        parser.error(f"--env names unset variables: {', '.join(missing)}")
    try:
        params = read_params(args.params_file, args.params)
    except ValueError as exc:
        parser.error(str(exc))
    return StageRun(
        stage=args.stage,
        command=tuple(command),
        params=params,
        entrypoint_num_cpus=args.entrypoint_num_cpus,
        entrypoint_num_gpus=args.entrypoint_num_gpus,
        env=tuple(args.env),
        excludes=tuple(args.exclude),
        in_place=args.in_place,
    )


def build_parser() -> argparse.ArgumentParser:
    """The runner's options (what comes before ``--``)."""
    parser = argparse.ArgumentParser(
        prog="run_stage.py",
        usage="%(prog)s STAGE [options] -- COMMAND [ARG]...",
        description="Run a DVC stage's command locally, or as a Ray job when RAY_ADDRESS is set.",
    )
    parser.add_argument("stage", help="the DVC stage name (goes into the submission id)")
    parser.add_argument(
        "--params",
        action="append",
        default=[],
        metavar="KEY",
        help="params-file key (dotted for nested) whose value is hashed into the submission id; "
        "repeat for every section the stage's `params:` lists",
    )
    parser.add_argument("--params-file", type=Path, default=Path("params.yaml"), metavar="PATH")
    parser.add_argument(
        "--entrypoint-num-cpus", type=float, metavar="N", help="CPUs reserved for the command's process"
    )
    parser.add_argument(
        "--entrypoint-num-gpus",
        type=float,
        metavar="N",
        help="GPUs reserved for the command's process (places it on a GPU node)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this environment variable's current value to the job (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave this out of the uploaded working dir (gitignore syntax; repeatable)",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        default=os.environ.get(IN_PLACE_ENV, "") not in ("", "0"),
        help=f"run the job in this directory's absolute path on the cluster (default: ${IN_PLACE_ENV})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    run = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("RAY_ADDRESS"):
        run_here(run.command)
    return run_as_job(run)


def run_here(command: Sequence[str]) -> NoReturn:
    """Replace this process with ``command``: its exit code and signals are the stage's."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(command[0], list(command))
    except OSError as exc:
        _say(f"cannot run {command[0]!r}: {exc.strerror}")
        os._exit(127)


# ----------------------------------------------------------------------------- Ray job mode


class _Interrupts:
    """Records the first SIGINT/SIGTERM and cancels the log-following task when it comes.

    Python-level handlers (not ``loop.add_signal_handler``) so a signal that lands during a
    blocking HTTP call is recorded at once and acted on as soon as the call returns.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def watch(self, task: asyncio.Task[Any]) -> None:
        self._loop, self._task = asyncio.get_running_loop(), task
        if self.signum is not None:
            task.cancel()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if self._task is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)


def run_as_job(run: StageRun) -> int:
    interrupts = _Interrupts()
    interrupts.install()
    _enable_token_auth_if_available()
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient()
    except (ConnectionError, AuthenticationError, ValueError, RuntimeError) as exc:
        _say(f"cannot reach the Ray job API (RAY_ADDRESS={os.environ['RAY_ADDRESS']}): {exc}")
        return UNREACHABLE_EXIT_CODE
    if interrupts.signum is not None:
        return 128 + interrupts.signum
    try:
        job_id = _submit_or_attach(client, run)
    except (RuntimeError, ValueError) as exc:  # e.g. an oversized working dir, a bad runtime_env
        _say(f"the cluster refused the job: {exc}")
        return UNREACHABLE_EXIT_CODE
    if interrupts.signum is None:
        try:
            asyncio.run(_follow_until_interrupted(client, job_id, interrupts))
        except (OSError, RuntimeError) as exc:
            _say(f"lost the Ray job API ({exc}); job {job_id} may still run: rerunning the stage attaches to it")
            return UNREACHABLE_EXIT_CODE
    if interrupts.signum is not None:
        return _stop(client, job_id, interrupts.signum)
    return _report(client.get_job_info(job_id))


def _enable_token_auth_if_available() -> None:
    """Turn on Ray token auth in this process when a token exists and RAY_AUTH_MODE is unset.

    What ``ray start`` does for a new head; the job SDK alone only sends a token when
    ``RAY_AUTH_MODE=token``. Sending one to a cluster without auth is harmless.
    """
    if os.environ.get("RAY_AUTH_MODE"):
        return
    token_path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_path.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def _submit_or_attach(client: Any, run: StageRun) -> str:
    """Attach to a live attempt of this id, or submit the next attempt; returns its submission id."""
    base = run.base_id
    for _ in range(3):  # another runner may take the same attempt id between list and submit
        attempt, latest = _latest_attempt(client, base)
        if latest is not None and not latest.status.is_terminal():
            _say(f"stage {run.stage}: attaching to {latest.status} job {latest.submission_id}")
            return latest.submission_id
        job_id = attempt_id(base, attempt + 1)
        try:
            client.submit_job(
                entrypoint=_entrypoint(run),
                submission_id=job_id,
                runtime_env=_runtime_env(run),
                metadata={"mirrorset_stage": run.stage, "mirrorset_attempt": str(attempt + 1)},
                entrypoint_num_cpus=run.entrypoint_num_cpus,
                entrypoint_num_gpus=run.entrypoint_num_gpus,
            )
        except RuntimeError as exc:
            if "already exists" in str(exc):
                continue
            raise
        _say(f"stage {run.stage}: submitted job {job_id}")
        return job_id
    raise RuntimeError(f"could not claim a submission id for {base}: other runners keep taking them")


def _latest_attempt(client: Any, base: str) -> tuple[int, Any]:
    """(highest attempt number, its JobDetails) among this id's jobs; (0, None) if there is none."""
    pattern = re.compile(re.escape(base) + r"(?:-a(\d+))?")
    best: tuple[int, Any] = (0, None)
    for job in client.list_jobs():
        match = pattern.fullmatch(job.submission_id or "")
        if match:
            attempt = int(match.group(1) or 1)
            if attempt > best[0]:
                best = (attempt, job)
    return best


def _entrypoint(run: StageRun) -> str:
    command = shlex.join(run.command)
    if run.in_place:
        return f"cd {shlex.quote(os.getcwd())} && {command}"
    return command


def _runtime_env(run: StageRun) -> dict[str, Any]:
    env: dict[str, Any] = {
        "working_dir": os.getcwd(),
        "excludes": [*ALWAYS_EXCLUDED, *run.excludes],
    }
    if run.env:
        env["env_vars"] = {name: os.environ[name] for name in run.env}
    return env


async def _follow_until_interrupted(client: Any, job_id: str, interrupts: _Interrupts) -> None:
    task = asyncio.create_task(_follow(client, job_id))
    interrupts.watch(task)
    try:
        await task
    except asyncio.CancelledError:
        if interrupts.signum is None:
            raise


class _LogPrinter:
    """Writes a job's log to stdout once, whatever offsets its pieces arrive at."""

    def __init__(self) -> None:
        self.printed = 0

    def write_at(self, offset: int, text: str) -> None:
        skip = self.printed - offset
        if skip < len(text):
            sys.stdout.write(text[max(0, skip) :])
            sys.stdout.flush()
            self.printed = offset + len(text)


async def _follow(client: Any, job_id: str) -> None:
    """Stream the job's log while polling its status; when it ends, print what the stream missed.

    The status API decides when the job is over (the log stream closes seconds later).
    """
    log = _LogPrinter()
    stream = asyncio.create_task(_stream_log(client, job_id, log))
    try:
        await _wait_until_terminal(client, job_id)
    finally:
        stream.cancel()
        await asyncio.gather(stream, return_exceptions=True)
    log.write_at(0, client.get_job_logs(job_id))


async def _stream_log(client: Any, job_id: str, log: _LogPrinter) -> None:
    """Follow the log over Ray's websocket; each reconnection replays it from the start."""
    import aiohttp

    for attempt in range(MAX_RECONNECTS + 1):
        received = 0
        try:
            async for chunk in client.tail_job_logs(job_id):
                log.write_at(received, chunk)
                received += len(chunk)
            return
        except (RuntimeError, OSError, aiohttp.ClientError) as exc:
            _say(f"log stream of {job_id} broke ({exc}); reconnecting")
        await asyncio.sleep(min(2.0**attempt, 30.0))
    _say(f"gave up streaming the log of {job_id}; the rest is printed when it ends")


async def _wait_until_terminal(client: Any, job_id: str) -> None:
    failures = 0
    while True:
        try:
            if client.get_job_status(job_id).is_terminal():
                return
            failures = 0
        except (OSError, RuntimeError) as exc:  # connection errors; RuntimeError: an HTTP error status
            failures += 1
            if failures > MAX_RECONNECTS:
                raise
            _say(f"status of {job_id} unavailable ({exc}); retrying")
        await asyncio.sleep(min(STATUS_POLL_S * 2**failures, 30.0))


def _stop(client: Any, job_id: str, signum: int) -> int:
    _say(f"{signal.Signals(signum).name}: stopping job {job_id}")
    try:
        client.stop_job(job_id)
    except RuntimeError as exc:
        _say(f"stop_job({job_id}) failed: {exc}")
    deadline = time.monotonic() + STOP_WAIT_S
    status = client.get_job_status(job_id)
    while not status.is_terminal() and time.monotonic() < deadline:
        time.sleep(0.5)
        status = client.get_job_status(job_id)
    _say(f"job {job_id} is {status}")
    return 128 + signum


def _report(info: Any) -> int:
    """The stage's exit code from the job's final JobDetails (status API, not the log)."""
    status = str(info.status)
    if status == "SUCCEEDED":
        _say(f"job {info.submission_id} SUCCEEDED")
        return 0
    if status == "STOPPED":
        _say(f"job {info.submission_id} was STOPPED by someone else")
        return STOPPED_EXIT_CODE
    code = info.driver_exit_code
    if code is None or code == 0:
        code = 1
    elif code < 0:  # the command died of signal -code
        code = 128 - code
    first_line = (info.message or "").strip().splitlines()[:1]
    _say(f"job {info.submission_id} FAILED ({info.error_type}, exit code {code}): {' '.join(first_line)}")
    return code


def _say(message: str) -> None:
    print(f"run_stage: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

"""Ray backend: an actor pool; each actor runs ``stage.setup()`` in ``__init__``.

The only module of mirrorset that imports Ray. Without ``address`` (and without
``RAY_ADDRESS`` in the environment) it starts a private local Ray with ``num_workers``
CPUs, no dashboard and worker logs kept out of the driver's output, and shuts it down
on ``close()``; with an address it joins that cluster and leaves it running.
"""

from __future__ import annotations

import os
import re
import traceback
from collections import deque
from typing import Any, Iterable, Iterator

import ray
from ray.exceptions import RayActorError, RayTaskError

from pipeline.backends import BatchOutcome
from pipeline.stage import Stage


class _StageActor:
    """Holds one stage instance for the actor's lifetime."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        stage.setup()

    def process(self, items: list[Any]) -> list[Any]:
        return self.stage.process_batch(items)

    def teardown(self) -> None:
        self.stage.teardown()


class RayBackend:
    """``num_workers`` actors per stage run; at most two batches in flight per actor."""

    def __init__(self, *, num_workers: int, address: str | None = None) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.num_workers = num_workers
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._started_here = not ray.is_initialized()
        if self._started_here:
            common = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if address:
                ray.init(address=address, **common)
            else:
                ray.init(num_cpus=num_workers, **common)

    def run(
        self, stage: Stage, batches: Iterable[tuple[int, list[Any]]], *, workers: int | None = None
    ) -> Iterator[BatchOutcome]:
        count = self.num_workers if workers is None else workers
        if count < 1:
            raise ValueError(f"workers must be >= 1, got {count}")
        actor_cls = ray.remote(
            num_cpus=stage.resources.cpus, num_gpus=stage.resources.gpus, max_restarts=2
        )(_StageActor)
        actors = [actor_cls.remote(stage) for _ in range(count)]
        idle = deque(actors * 2)  # two slots per actor keep each one busy between batches
        pending: dict[Any, tuple[int, Any]] = {}
        source = iter(batches)
        exhausted = False
        try:
            while True:
                while idle and not exhausted:
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                        break
                    actor = idle.popleft()
                    pending[actor.process.remote(nxt[1])] = (nxt[0], actor)
                if not pending:
                    break
                [ref], _ = ray.wait(list(pending), num_returns=1)
                index, actor = pending.pop(ref)
                idle.append(actor)
                try:
                    yield BatchOutcome(index, ray.get(ref))
                except (RayTaskError, RayActorError) as exc:  # reported; the runner retries
                    yield BatchOutcome(index, None, _describe(exc))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            try:
                ray.get([a.teardown.remote() for a in actors])
            except RayActorError:
                pass  # an actor that already died has nothing left to tear down
            for actor in actors:
                ray.kill(actor)

    def close(self) -> None:
        if self._started_here and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> "RayBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _describe(exc: Exception) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc))
    return _ANSI.sub("", text)[-4000:]

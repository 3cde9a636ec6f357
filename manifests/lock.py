"""One build per output root: a lock that survives crashes and recognises stale holders.

Under ``ROOT/_lock/`` the holder keeps two small JSON records:

- ``owner.json``, written once when the lock is taken: a random ``token``, the holder's
  host identity (hostname, kernel boot id, pid namespace), ``pid`` and start time;
- ``heartbeat.json``, rewritten every ``heartbeat_s`` seconds by a daemon thread: the
  token and the holder's wall-clock time. Before each beat the thread re-reads
  ``owner.json``; if the token there is no longer its own, the lock is *lost* and
  :meth:`OutputLock.check` raises :class:`LockLost`.

A lock is **stale**, and the next build takes it over with a logged message (also in
:attr:`OutputLock.took_over`), when its heartbeat is older than ``stale_after_s``, or its
holder ran on this host (same hostname, boot id and pid namespace) and its pid is gone.
Clocks of hosts sharing a root must agree to well within ``stale_after_s``; a reused pid
only delays the takeover until the heartbeat times out.

**Local paths** take the lock under a ``filelock`` guard (``_lock/guard``), and create
``owner.json`` with a hard link, which fails if it exists: check-and-take is atomic
among processes whose file system honours ``flock`` (local disks; NFSv4).

**Object stores** (``s3://``, ``gs://``, ... through fsspec) have no rename and no guard.
``owner.json`` is written with a conditional put (``If-None-Match: *``) where the store
supports it (AWS S3 and moto do), else after an existence check, and then read back after
``settle_s`` seconds: the lock is taken only if the token read back is one's own. The
race window that remains: two builds that both judge the same holder stale (or, without
conditional puts, both find no holder) within ``settle_s`` of each other each delete and
write; the read-back after ``settle_s`` leaves exactly one owner as long as each one's
check-and-write takes less than ``settle_s``. If it took longer, both believe they hold
the lock until the loser's next heartbeat (at most ``heartbeat_s``) finds the other's
token and marks its lock lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

LOCK_DIR = "_lock"
OWNER = "owner.json"
HEARTBEAT = "heartbeat.json"


class LockHeld(RuntimeError):
    """Another live build holds the lock; ``holder`` describes it (None if unreadable)."""

    def __init__(self, root: str, holder: "Holder | None", detail: str) -> None:
        self.root = root
        self.holder = holder
        super().__init__(f"{root} is locked by another build: {detail}")


class LockLost(RuntimeError):
    """This build's lock was taken over or could not be refreshed; stop writing."""


@dataclass(frozen=True)
class HostIdentity:
    """What makes two processes share one pid space: hostname, boot id, pid namespace."""

    hostname: str
    boot_id: str
    pid_namespace: str

    @classmethod
    def current(cls) -> "HostIdentity":
        return cls(socket.gethostname(), _read_text("/proc/sys/kernel/random/boot_id"), _pid_namespace())


@dataclass(frozen=True)
class Holder:
    """A lock holder as recorded: ``owner.json`` plus its last heartbeat (epoch seconds)."""

    token: str
    host: HostIdentity
    pid: int
    started: float
    heartbeat: float

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.heartbeat)

    def describe(self, now: float) -> str:
        started = datetime.fromtimestamp(self.started, timezone.utc).isoformat(timespec="seconds")
        return (
            f"pid {self.pid} on host {self.host.hostname} (started {started}, "
            f"last heartbeat {self.age_s(now):.0f} s ago)"
        )

    def stale_reason(self, now: float, stale_after_s: float) -> str | None:
        """Why this holder is presumed gone, or None if it may still be running."""
        if self.host == HostIdentity.current() and not _pid_alive(self.pid):
            return f"pid {self.pid} no longer runs on this host"
        if self.age_s(now) > stale_after_s:
            return f"its last heartbeat is {self.age_s(now):.0f} s old (limit {stale_after_s:g} s)"
        return None


class OutputLock:
    """Exclusive lock on an output root (local path or fsspec URI); a context manager.

    ``stale_after_s``: a holder silent for longer is presumed dead; ``heartbeat_s``: how
    often the holder proves it is alive (must be well below ``stale_after_s``);
    ``settle_s``: wait before the read-back on object stores (None: 2 s there, 0 locally);
    ``storage_options``: passed to fsspec for URIs (endpoint, credentials).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        stale_after_s: float = 120.0,
        heartbeat_s: float = 10.0,
        settle_s: float | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not 0 < heartbeat_s * 2 <= stale_after_s:
            raise ValueError(f"need 0 < 2 * heartbeat_s <= stale_after_s, got {heartbeat_s} and {stale_after_s}")
        self.store = _open_store(root, storage_options or {})
        self.root = self.store.root
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.settle_s = self.store.default_settle_s if settle_s is None else settle_s
        self.token = ""
        self.took_over: str | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> "OutputLock":
        """Take the lock, taking over a stale one; :class:`LockHeld` if a live build has it."""
        if self._thread is not None:
            raise RuntimeError(f"the lock on {self.root} is already held by this object")
        token = secrets.token_hex(16)
        now = time.time()
        record = {"token": token, "host": asdict(HostIdentity.current()), "pid": os.getpid(), "started": now}
        with self.store.guard():
            current = self.read_holder()
            if current is not None:
                reason = current.stale_reason(time.time(), self.stale_after_s)
                if reason is None:
                    raise LockHeld(self.root, current, _held_detail(current, self.stale_after_s))
                self.took_over = f"took over the lock on {self.root} from {current.describe(time.time())}: {reason}"
                log.warning("%s", self.took_over)
                self.store.delete(HEARTBEAT)
                self.store.delete(OWNER)
            if not self.store.create(OWNER, _encode(record)):
                winner = self.read_holder()
                raise LockHeld(self.root, winner, "another build took the lock at the same moment")
            self.store.write(HEARTBEAT, _encode({"token": token, "time": now, "beats": 0}))
        if self.settle_s:
            time.sleep(self.settle_s)
        holder = self.read_holder()
        if holder is None or holder.token != token:
            raise LockHeld(self.root, holder, "another build took the lock at the same moment")
        self.token = token
        self._lost = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat {self.root}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and remove the records if they are still this lock's."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        with self.store.guard():
            holder = self.read_holder()
            if holder is not None and holder.token == self.token:
                self.store.delete(HEARTBEAT)
                self.store.delete(OWNER)
            else:
                log.warning("lock on %s was no longer ours at release (%s)", self.root, self._lost or "taken over")

    def check(self) -> None:
        """Raise :class:`LockLost` if another build took the lock or it could not be refreshed."""
        if self._lost is not None:
            raise LockLost(f"lost the lock on {self.root}: {self._lost}")

    def read_holder(self) -> Holder | None:
        """The recorded holder, or None if the root is not locked."""
        owner = self._decode(OWNER)
        if owner is None:
            return None
        beat = self._decode(HEARTBEAT)
        heartbeat = owner["started"]
        if beat is not None and beat.get("token") == owner["token"]:
            heartbeat = max(heartbeat, float(beat["time"]))
        return Holder(owner["token"], HostIdentity(**owner["host"]), int(owner["pid"]), float(owner["started"]), heartbeat)

    def _decode(self, name: str) -> dict[str, Any] | None:
        data = self.store.read(name)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ValueError(
                f"unreadable lock record {self.root}/{LOCK_DIR}/{name} ({exc}); "
                "delete it if no build is writing to this root"
            ) from exc

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _beat(self) -> None:
        beats = 0
        last_ok = time.monotonic()
        while not self._stop.wait(self.heartbeat_s):
            try:
                holder = self.read_holder()
                if holder is None or holder.token != self.token:
                    self._lost = "its record now names " + (
                        holder.describe(time.time()) if holder else "no holder (it was deleted)"
                    )
                    log.error("lost the lock on %s: %s", self.root, self._lost)
                    return
                beats += 1
                self.store.write(HEARTBEAT, _encode({"token": self.token, "time": time.time(), "beats": beats}))
                last_ok = time.monotonic()
            except Exception as exc:  # storage errors (types vary by fsspec backend): retry until stale
                if time.monotonic() - last_ok > self.stale_after_s:
                    self._lost = f"no heartbeat could be written for {self.stale_after_s:g} s ({exc})"
                    log.error("lost the lock on %s: %s", self.root, self._lost)
                    return
                log.warning("lock heartbeat on %s failed, retrying: %s", self.root, exc)


def _held_detail(holder: Holder, stale_after_s: float) -> str:
    return (
        f"{holder.describe(time.time())}. Wait for it to finish; if it is gone, its lock is taken "
        f"over once its heartbeat is {stale_after_s:g} s old (at once on its own host)"
    )


class _Store(Protocol):
    """The few operations the lock needs on ``ROOT/_lock/``."""

    root: str
    default_settle_s: float

    def guard(self) -> contextlib.AbstractContextManager[Any]: ...

    def read(self, name: str) -> bytes | None: ...

    def create(self, name: str, data: bytes) -> bool: ...

    def write(self, name: str, data: bytes) -> None: ...

    def delete(self, name: str) -> None: ...


class _LocalStore:
    """A local (or NFS) directory: flock guard, hard-link create, rename overwrite."""

    default_settle_s = 0.0

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.dir = root / LOCK_DIR

    def guard(self) -> contextlib.AbstractContextManager[Any]:
        from filelock import FileLock

        self.dir.mkdir(parents=True, exist_ok=True)
        return FileLock(self.dir / "guard", timeout=60)

    def read(self, name: str) -> bytes | None:
        try:
            return (self.dir / name).read_bytes()
        except FileNotFoundError:
            return None

    def create(self, name: str, data: bytes) -> bool:
        tmp = self._tmp(name, data)
        try:
            os.link(tmp, self.dir / name)
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    def write(self, name: str, data: bytes) -> None:
        os.replace(self._tmp(name, data), self.dir / name)

    def delete(self, name: str) -> None:
        (self.dir / name).unlink(missing_ok=True)

    def _tmp(self, name: str, data: bytes) -> Path:
        """``data`` in a new uniquely named file beside ``name``, synced."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{name}.{secrets.token_hex(8)}.partial"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp


class _FsspecStore:
    """An object store through fsspec: whole-object writes, conditional create if supported."""

    default_settle_s = 2.0

    def __init__(self, url: str, storage_options: dict[str, Any]) -> None:
        import fsspec

        self.fs, path = fsspec.core.url_to_fs(url, **storage_options)
        self.root = url.rstrip("/")
        self.dir = f"{path.rstrip('/')}/{LOCK_DIR}"

    def guard(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def read(self, name: str) -> bytes | None:
        try:
            return self.fs.cat_file(f"{self.dir}/{name}")
        except FileNotFoundError:
            return None

    def create(self, name: str, data: bytes) -> bool:
        path = f"{self.dir}/{name}"
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except TypeError:  # an fsspec implementation without ``mode``: check, then write
            if self.fs.exists(path):
                return False
            self.fs.pipe_file(path, data)
        return True

    def write(self, name: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.dir}/{name}", data)

    def delete(self, name: str) -> None:
        try:
            self.fs.rm_file(f"{self.dir}/{name}")
        except FileNotFoundError:
            pass  # already gone: the state we want


def _open_store(root: str | os.PathLike[str], storage_options: dict[str, Any]) -> _Store:
    import fsspec

    protocol, path = fsspec.core.split_protocol(os.fspath(root))
    if protocol in (None, "file", "local"):
        return _LocalStore(Path(path).expanduser().resolve())
    return _FsspecStore(os.fspath(root), storage_options)


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    stat = _read_text(f"/proc/{pid}/stat")
    return not stat or stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""

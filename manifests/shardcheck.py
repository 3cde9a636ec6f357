"""Check one committed shard against its marker, its manifests parts and its plan.

:func:`check_shard` is the unit of work of ``mirrorset verify`` (one task per shard). In
full mode it reads the tar *once*, sequentially: a prefetch thread reads it in 4 MiB blocks
and hashes each block for the whole-tar sha256 while the caller parses members and hashes
each of them, so both digests come from the same bytes as they are read; they are compared
with the marker and with the pairs rows' sha256 columns. Memory holds one shard's rows, a
few blocks and one member at a time, never anything of another shard. Quick mode checks
sizes, markers and Parquet footers and reads no tar byte.

Every finding is a :class:`Problem` (codes in ``PROBLEM_CODES``); a shard never stops at
its first problem, and at most ``MAX_PROBLEMS`` are listed per shard (then one
``truncated`` problem says how many more there were).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from manifests.digests import sha256_hex
from manifests.index import index_entry
from manifests.markers import read_marker, stored_sha256
from manifests.parquet import count_rows, read_part
from manifests.schema import (
    PAIR_OPS_SCHEMA,
    PAIRS_SCHEMA,
    PLAN_DIR,
    PLAN_SCHEMA,
    REJECTS_SCHEMA,
    SCHEMA_VERSION,
    check_key,
    group_key,
    marker_path,
    member_sha_columns,
    pair_key,
    pair_ops_part_path,
    pairs_part_path,
    rejects_part_path,
    shard_name,
    shard_tar_path,
)
from manifests.shards import READ_SIZE, UnsafeTarError, iter_tar_members
from manifests.storage import Store

#: Problem code -> meaning (also in docs/manifests.md).
PROBLEM_CODES = {
    "partial_file": "a temporary `.<name>.<attempt>.partial` file is left: a writer did not finish (or is running)",
    "stray_file": "a file where the layout names none",
    "missing_shard": "the plan names a shard that has no marker and no files: the build did not finish",
    "missing_marker": "a shard has files (or an index entry) but no commit marker",
    "bad_marker": "a marker is not valid JSON, names another shard, or lacks a field",
    "missing_file": "a file a marker (or the layout) requires is absent",
    "size_mismatch": "a file's size differs from its marker",
    "checksum": "a file's sha256 differs from its marker",
    "bad_table": "a Parquet file is unreadable or its schema differs from manifests.schema",
    "corrupt_tar": "a tar cannot be read safely (corrupt header, link, '..' name, extended header, truncation)",
    "member_checksum": "a member's sha256 differs from its pairs row",
    "missing_member": "a pairs row's member (or whole sample) is absent from the tar",
    "extra_member": "a tar member has no pairs row, or a suffix its row does not expect",
    "sample_order": "the tar's samples are not in the pairs part's row order",
    "bad_key": "a key or pair id is malformed or disagrees with the row's ids",
    "row_mismatch": "a pairs row contradicts its shard (subset, shard, duplicate pair id)",
    "op_rows": "pair_ops rows differ from their pairs row's op chain",
    "plan_mismatch": "a shard's rows or planned count disagree with the plan, or plan runs overlap",
    "unaccounted": "a planned sample is neither a pair nor covered by a reject row",
    "count_mismatch": "a count (marker, index, dataset.json) differs from the files",
    "index_mismatch": "shards/<subset>/index.json differs from the markers",
    "task_failed": "the check of a shard crashed (the detail says why)",
    "truncated": "more problems in this shard than listed",
}

#: Problems listed per shard before the rest are only counted.
MAX_PROBLEMS = 100

#: Marker file roles and the path each must have.
_ROLE_PATHS = {
    "tar": shard_tar_path,
    "pairs": pairs_part_path,
    "pair_ops": pair_ops_part_path,
    "rejects": lambda subset, index: rejects_part_path(subset, index),
}

_PAIR_COLUMNS = [
    "pair_id", "subset", "group_id", "source_id", "split", "person_index", "edit_index", "view", "shard",
    "key", "ops", "image_format", "sha256_before", "sha256_after", "sha256_mask", "sha256_opmask",
    "sha256_regions", "sha256_strength", "sha256_json",
]  # fmt: skip
_OP_FIELDS = ("name", "strength", "applied_strength", "clamped")


@dataclass(frozen=True)
class Problem:
    """One finding; ``path`` is relative to the dataset root."""

    code: str
    path: str
    detail: str

    def __post_init__(self) -> None:
        if self.code not in PROBLEM_CODES:
            raise ValueError(f"unknown problem code {self.code!r}")

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "detail": self.detail}


@dataclass(frozen=True)
class ShardCheck:
    """Task: check shard ``index`` of ``subset``; ``listed`` is its entry in the stored
    index.json (None when the index does not list it)."""

    subset: str
    index: int
    quick: bool
    listed: dict[str, Any] | None


@dataclass(frozen=True)
class ShardResult:
    """What a check found: problems, the report's shard record (None without a tar), counts,
    and when the check started and finished (``time.time()`` on the worker)."""

    subset: str
    index: int
    problems: tuple[Problem, ...]
    record: dict[str, Any] | None
    counts: dict[str, int]
    started: float = 0.0
    finished: float = 0.0


@dataclass
class _Findings:
    problems: list[Problem] = field(default_factory=list)
    dropped: int = 0

    def add(self, code: str, path: str, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(code, path, detail))
        else:
            self.dropped += 1

    def final(self, path: str) -> tuple[Problem, ...]:
        extra = [Problem("truncated", path, f"{self.dropped} more problem(s) not listed")] if self.dropped else []
        return tuple(self.problems + extra)


def zero_counts() -> dict[str, int]:
    """A shard result's counts before anything was read: samples and members found in the
    tar (quick mode: the marker's sample count), bytes read from it, the marker's pair count."""
    return {"samples": 0, "members": 0, "bytes_read": 0, "marker_pairs": 0}


class PrefetchReader:
    """Reads a stream on a background thread, ``depth`` blocks of ``READ_SIZE`` ahead, and
    hashes every block (sha256) on that thread as it arrives; ``read`` hands the bytes out
    in order. The disk (or network) and the member hashing of the caller overlap, and the
    whole-file hash runs beside them (hashlib releases the GIL). Use as a context manager;
    ``sha256`` and ``size`` are final once ``read`` has returned ``b""``."""

    def __init__(self, stream: BinaryIO, depth: int = 4) -> None:
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._hash = hashlib.sha256()
        self._stop = threading.Event()
        self._pending = b""
        self._ended = False
        self.size = 0
        self._thread = threading.Thread(target=self._fill, args=(stream,), name="verify-prefetch", daemon=True)
        self._thread.start()

    def __enter__(self) -> PrefetchReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _fill(self, stream: BinaryIO) -> None:
        try:
            while not self._stop.is_set():
                block = stream.read(READ_SIZE)
                self._hash.update(block)
                self.size += len(block)
                self._put(block)
                if not block:
                    return
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:
        while not self._pending and not self._ended:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            self._ended = not item
            self._pending = item
        if 0 <= size < len(self._pending):
            out, self._pending = self._pending[:size], self._pending[size:]
        else:
            out, self._pending = self._pending, b""
        return out

    def drain(self) -> None:
        """Read (and hash) the rest of the stream."""
        while self.read(READ_SIZE):
            pass

    @property
    def sha256(self) -> str:
        if not self._ended:
            raise RuntimeError("the stream has not been read to its end")
        return self._hash.hexdigest()


def check_shard(store: Store, task: ShardCheck) -> ShardResult:
    """Check one shard (module docstring); never raises for bad data."""
    started = time.time()
    result = _check_shard(store, task)
    return replace(result, started=started, finished=time.time())


def _check_shard(store: Store, task: ShardCheck) -> ShardResult:
    found = _Findings()
    name = shard_name(task.subset, task.index)
    where = marker_path(task.subset, task.index)
    counts = zero_counts()
    try:
        marker = read_marker(store, task.subset, task.index)
    except ValueError as exc:
        found.add("bad_marker", where, str(exc))
        return ShardResult(task.subset, task.index, found.final(where), None, counts)
    if marker is None:
        found.add("missing_marker", where, f"shard {name} has no marker")
        return ShardResult(task.subset, task.index, found.final(where), None, counts)
    files = _marker_files(marker, task, found)
    if files is None:
        return ShardResult(task.subset, task.index, found.final(where), None, counts)
    counts["marker_pairs"] = marker["counts"]["pairs"]
    stamps = {}
    for role, record in files.items():
        stamp = store.stamp(record["path"])
        if stamp is None:
            found.add("missing_file", record["path"], f"shard {name}: the marker records its {role} but it is absent")
        elif stamp["bytes"] != record["bytes"]:
            found.add("size_mismatch", record["path"], f"{stamp['bytes']} bytes, the marker says {record['bytes']}")
        stamps[role] = stamp
    expected_entry = index_entry(marker)
    if task.listed != expected_entry:
        detail = "not listed" if task.listed is None else _difference(task.listed, expected_entry)
        found.add("index_mismatch", f"shards/{task.subset}/index.json", f"entry of {name}: {detail}")
    if task.quick:
        nsamples = _check_footers(store, marker, files, stamps, found)
        sha = files["tar"]["sha256"]
        counts["samples"] = nsamples
    else:
        nsamples, sha = _check_full(store, task, marker, files, stamps, found, counts)
    tar_stamp = stamps.get("tar")
    record = None
    if tar_stamp is not None:
        record = {"subset": task.subset, "url": files["tar"]["path"], "sha256": sha, "nsamples": nsamples,
                  "filesize": tar_stamp["bytes"], **{k: v for k, v in tar_stamp.items() if k != "bytes"}}  # fmt: skip
    return ShardResult(task.subset, task.index, found.final(where), record, counts)


def _marker_files(marker: Mapping[str, Any], task: ShardCheck, found: _Findings) -> dict[str, dict[str, Any]] | None:
    """The marker's file records if the marker is well formed (problems added otherwise)."""
    where = marker_path(task.subset, task.index)
    name = shard_name(task.subset, task.index)
    bad = []
    for key, value in (("shard", name), ("subset", task.subset), ("index", task.index),
                       ("schema_version", SCHEMA_VERSION)):  # fmt: skip
        if marker.get(key) != value:
            bad.append(f"{key} is {marker.get(key)!r}, expected {value!r}")
    counts = marker.get("counts")
    if not isinstance(counts, Mapping) or not all(isinstance(counts.get(k), int) for k in ("pairs", "planned", "rejects")):
        bad.append("counts must hold integer pairs, planned and rejects")
    files = marker.get("files")
    records: dict[str, dict[str, Any]] = {}
    for role, path_of in _ROLE_PATHS.items():
        record = files.get(role) if isinstance(files, Mapping) else None
        path = path_of(task.subset, task.index)
        if not isinstance(record, Mapping) or not isinstance(record.get("bytes"), int) or not isinstance(record.get("sha256"), str):
            bad.append(f"no valid {role!r} file record")
        elif record.get("path") != path:
            bad.append(f"{role} path is {record.get('path')!r}, expected {path!r}")
        else:
            records[role] = dict(record)
    for detail in bad:
        found.add("bad_marker", where, detail)
    return None if bad else records


def _check_footers(store: Store, marker: Mapping[str, Any], files: dict[str, dict[str, Any]],
                   stamps: dict[str, Any], found: _Findings) -> int:  # fmt: skip
    """Quick mode: schemas and row counts from the Parquet footers; returns the marker's sample count."""
    counts = marker["counts"]
    for role, schema, count_key in (("pairs", PAIRS_SCHEMA, "pairs"), ("pair_ops", PAIR_OPS_SCHEMA, None),
                                    ("rejects", REJECTS_SCHEMA, "rejects")):  # fmt: skip
        rel = files[role]["path"]
        if stamps.get(role) is None:
            continue
        try:
            rows = count_rows(store, rel, schema)
        except (ValueError, OSError, pa.ArrowException) as exc:
            found.add("bad_table", rel, _first_line(exc))
            continue
        if count_key is not None and rows != counts[count_key]:
            found.add("count_mismatch", rel, f"{rows} rows, the marker counts {counts[count_key]} {count_key}")
    return int(counts["pairs"])


def _check_full(store: Store, task: ShardCheck, marker: Mapping[str, Any], files: dict[str, dict[str, Any]],
                stamps: dict[str, Any], found: _Findings, counts: dict[str, int]) -> tuple[int, str | None]:  # fmt: skip
    """Full mode: hash the parts, check the rows, stream the tar once; (samples in the tar, tar sha256)."""
    for role in ("pairs", "pair_ops", "rejects"):
        rel = files[role]["path"]
        if stamps.get(role) is not None and stored_sha256(store, rel) != files[role]["sha256"]:
            found.add("checksum", rel, "sha256 differs from the marker")
    pairs = _read(store, files["pairs"]["path"], PAIRS_SCHEMA, _PAIR_COLUMNS, found) if stamps.get("pairs") else None
    ops = _read(store, files["pair_ops"]["path"], PAIR_OPS_SCHEMA, None, found) if stamps.get("pair_ops") else None
    rejects = _read(store, files["rejects"]["path"], REJECTS_SCHEMA, None, found) if stamps.get("rejects") else None
    rows = pairs.to_pylist() if pairs is not None else None
    counts_marker = marker["counts"]
    if rows is not None:
        _check_rows(task, rows, files["pairs"]["path"], found)
        if len(rows) != counts_marker["pairs"]:
            found.add("count_mismatch", files["pairs"]["path"], f"{len(rows)} rows, the marker counts {counts_marker['pairs']} pairs")
        if ops is not None:
            _check_op_rows(rows, ops, files["pair_ops"]["path"], found)
        if rejects is not None:
            if rejects.num_rows != counts_marker["rejects"]:
                found.add("count_mismatch", files["rejects"]["path"],
                          f"{rejects.num_rows} rows, the marker counts {counts_marker['rejects']} rejects")  # fmt: skip
            _check_plan(store, task, rows, rejects, counts_marker, found)
    if stamps.get("tar") is None:
        return 0, None
    return _scan_tar(store, files["tar"], rows, found, counts)


def _read(store: Store, rel: str, schema: pa.Schema, columns: list[str] | None, found: _Findings) -> pa.Table | None:
    try:
        table = read_part(store, rel, schema)
    except (ValueError, OSError, pa.ArrowException) as exc:
        found.add("bad_table", rel, _first_line(exc))
        return None
    return table.select(columns) if columns else table


def _check_rows(task: ShardCheck, rows: list[dict[str, Any]], rel: str, found: _Findings) -> None:
    name = shard_name(task.subset, task.index)
    seen: set[str] = set()
    for i, row in enumerate(rows):
        key = row["key"]
        try:
            check_key(key)
            expected = pair_key(row["subset"], row["source_id"], row["person_index"], row["edit_index"], row["view"])
            group = group_key(row["subset"], row["source_id"], row["person_index"], row["edit_index"])
        except ValueError as exc:
            found.add("bad_key", rel, f"row {i}: {exc}")
            continue
        if not (row["pair_id"] == key == expected and row["group_id"] == group):
            found.add("bad_key", rel, f"row {i}: pair_id {row['pair_id']!r}, key {key!r} and group_id "
                      f"{row['group_id']!r} must be {expected!r} and {group!r} from the row's ids")  # fmt: skip
        if row["subset"] != task.subset or row["shard"] != name:
            found.add("row_mismatch", rel, f"row {i} ({key}): subset {row['subset']!r}, shard {row['shard']!r} in {name}")
        if key in seen:
            found.add("row_mismatch", rel, f"row {i}: pair_id {key!r} occurs twice")
        seen.add(key)


def _check_op_rows(rows: list[dict[str, Any]], ops: pa.Table, rel: str, found: _Findings) -> None:
    by_pair: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for op in ops.to_pylist():
        by_pair[op["pair_id"]].append(op)
    for row in rows:
        got = sorted(by_pair.pop(row["pair_id"], []), key=lambda op: op["op_index"])
        want = [(k, *(op[f] for f in _OP_FIELDS)) for k, op in enumerate(row["ops"])]
        have = [(op["op_index"], *(op[f] for f in _OP_FIELDS)) for op in got]
        ids_ok = all((op["subset"], op["group_id"], op["source_id"], op["split"]) ==
                     (row["subset"], row["group_id"], row["source_id"], row["split"]) for op in got)  # fmt: skip
        if have != want or not ids_ok:
            found.add("op_rows", rel, f"{row['pair_id']}: pair_ops rows {have} differ from the op chain {want}"
                      + ("" if ids_ok else " (or their subset/group/source/split)"))  # fmt: skip
    for pair_id in sorted(by_pair):
        found.add("op_rows", rel, f"{len(by_pair[pair_id])} row(s) of {pair_id!r}, which is not a pair of this shard")


def _check_plan(store: Store, task: ShardCheck, rows: list[dict[str, Any]], rejects: pa.Table,
                counts: Mapping[str, Any], found: _Findings) -> None:  # fmt: skip
    """Every pair lies in the shard's planned runs; every planned sample is a pair or has a reject row."""
    runs = shard_runs(store, task.subset, task.index)
    rel = pairs_part_path(task.subset, task.index)
    if not runs:
        found.add("plan_mismatch", rel, f"the plan of {task.subset} has no runs for shard {task.index}")
        return
    planned = sum((r["edit_stop"] - r["edit_start"]) * r["views"] for r in runs)
    if planned != counts["planned"]:
        found.add("plan_mismatch", marker_path(task.subset, task.index),
                  f"the marker counts {counts['planned']} planned samples, the plan {planned}")  # fmt: skip
    slots = {}
    for r in runs:
        for edit in range(r["edit_start"], r["edit_stop"]):
            slots[(r["source_id"], r["person_index"], edit)] = r["views"]
    pairs = set()
    for row in rows:
        slot = (row["source_id"], row["person_index"], row["edit_index"])
        if slots.get(slot, 0) <= row["view"]:
            found.add("plan_mismatch", rel, f"{row['pair_id']} is not in the shard's planned runs")
        pairs.add((*slot, row["view"]))
    covered = set()
    for r in rejects.select(["source_id", "person_index", "edit_index", "view"]).to_pylist():
        covered.add((r["source_id"], r["person_index"], r["edit_index"], r["view"]))
    for (source_id, person, edit), views in slots.items():
        for view in range(views):
            if (source_id, person, edit, view) in pairs:
                continue
            if (source_id, person, edit, view) not in covered and (source_id, person, edit, None) not in covered:
                found.add("unaccounted", rel, f"planned sample {pair_key(task.subset, source_id, person, edit, view)} "
                          "is neither a pair nor a reject")  # fmt: skip


def shard_runs(store: Store, subset: str, index: int) -> list[dict[str, Any]]:
    """The plan rows of shard ``index`` of ``subset`` (every generation; row-group filtered)."""
    runs = []
    for rel in store.list(f"{PLAN_DIR}/subset={subset}", ".parquet"):
        table = read_part(store, rel, PLAN_SCHEMA, filters=pc.field("shard_index") == index)
        runs.extend(table.to_pylist())
    return runs


def _scan_tar(store: Store, record: Mapping[str, Any], rows: list[dict[str, Any]] | None, found: _Findings,
              counts: dict[str, int]) -> tuple[int, str]:  # fmt: skip
    """One sequential pass: tar sha256, member sha256s, keys, order and counts."""
    rel = record["path"]
    expected = {row["key"]: row for row in rows or []}
    order: list[str] = []
    done: set[str] = set()
    current: str | None = None
    digests: dict[str, str] = {}

    def finish() -> None:
        if current is None:
            return
        order.append(current)
        done.add(current)
        _check_sample(current, digests, expected.get(current), rows is not None, rel, found)

    with store.open_read(rel, block_size=READ_SIZE) as raw, PrefetchReader(raw) as reader:
        try:
            for member in iter_tar_members(reader, rel):
                if member.key != current:
                    finish()
                    current, digests = member.key, {}
                    if current in done:
                        found.add("sample_order", rel, f"members of {current!r} are not consecutive")
                if member.suffix in digests:
                    found.add("extra_member", rel, f"{member.name!r} occurs twice")
                digests[member.suffix] = sha256_hex(member.data)
                counts["members"] += 1
            finish()
        except UnsafeTarError as exc:
            found.add("corrupt_tar", rel, str(exc).removeprefix(f"{rel}: "))
        reader.drain()
    counts["bytes_read"] += reader.size
    counts["samples"] += len(order)
    if reader.sha256 != record["sha256"]:
        found.add("checksum", rel, "sha256 differs from the marker")
    if rows is not None:
        for key in sorted(set(expected) - done):
            found.add("missing_member", rel, f"sample {key!r} of the pairs part is not in the tar")
        in_tar = [key for key in order if key in expected]
        in_rows = [row["key"] for row in rows if row["key"] in done]
        if in_tar != in_rows:
            at = next(i for i, (a, b) in enumerate(zip(in_tar, in_rows)) if a != b)
            found.add("sample_order", rel, f"sample {at} is {in_tar[at]!r} in the tar but {in_rows[at]!r} in the pairs part")
    return len(order), reader.sha256


def _check_sample(key: str, digests: dict[str, str], row: dict[str, Any] | None, have_rows: bool, rel: str,
                  found: _Findings) -> None:  # fmt: skip
    try:
        check_key(key)
    except ValueError as exc:
        found.add("bad_key", rel, str(exc))
    if row is None:
        if have_rows:
            found.add("extra_member", rel, f"sample {key!r} ({len(digests)} members) has no pairs row")
        return
    columns = member_sha_columns(row["image_format"])
    for suffix, column in columns.items():
        if suffix not in digests:
            found.add("missing_member", rel, f"{key}.{suffix} is absent")
        elif digests[suffix] != row[column]:
            found.add("member_checksum", rel, f"{key}.{suffix}: sha256 differs from the pairs row's {column}")
    for suffix in sorted(set(digests) - set(columns)):
        found.add("extra_member", rel, f"{key}.{suffix} is not a member of a {row['image_format']} pair")


def _difference(found: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    return "; ".join(f"{k} is {found.get(k)!r}, the marker gives {expected.get(k)!r}" for k in keys)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"

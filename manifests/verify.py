"""Check a build's outputs end to end and write ``OUT/verify.json``.

:func:`verify` re-reads every shard: each member's sha256 against its pair row,
one-to-one correspondence of rows and member sets, tar order, marker sizes and
hashes, the counts in ``dataset.json`` and leftover ``*.partial`` files. Every
finding is a :class:`Problem` with a code from ``PROBLEM_CODES``; nothing stops
at the first one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from manifests.markers import marker_mismatches, read_marker, write_json_atomic
from manifests.parquet import count_rows, read_table
from manifests.schema import (
    DETECTIONS_SCHEMA,
    PAIRS_SCHEMA,
    REJECTS_SCHEMA,
    SCHEMA_VERSION,
    SOURCES_SCHEMA,
    SUBSETS,
    detections_path,
    marker_path,
    member_sha_columns,
    pairs_dir,
    pairs_part_path,
    rejects_path,
    shard_name,
    shard_tar_path,
    sources_path,
)
from manifests.digests import sha256_hex
from manifests.shards import UnsafeTarError, iter_tar_members

#: Problem code -> meaning (also documented in docs/manifests.md).
PROBLEM_CODES = {
    "partial_file": "a *.partial file is left: a writer did not finish",
    "stray_file": "a file or folder that the layout does not name",
    "bad_table": "a Parquet file is unreadable or its schema differs from manifests.schema",
    "missing_tar": "a shard has a part or marker but no tar",
    "missing_part": "a shard has a tar or marker but no pairs part",
    "missing_marker": "a shard has a tar or part but no commit marker",
    "marker_mismatch": "a marker's sizes, hashes or counts differ from the files",
    "corrupt_tar": "a tar cannot be read safely (corrupt header, link, '..' name, ...)",
    "member_order": "tar members are not in strictly increasing name order",
    "missing_member": "a pair row's member is absent from its tar",
    "extra_member": "a tar member has no pair row, or a suffix its row does not expect",
    "checksum": "a member's sha256 differs from its pair row",
    "duplicate_row": "a pair_id occurs more than once",
    "row_mismatch": "a pair row contradicts its part (subset, shard, key, image_format)",
    "count_mismatch": "a count in dataset.json differs from the manifests",
}


@dataclass(frozen=True)
class Problem:
    """One finding; ``path`` is relative to the output directory (posix)."""

    code: str
    path: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` checked and found; ``ok`` iff ``problems`` is empty."""

    shards: int
    pairs: int
    members: int
    member_bytes: int
    checked_counts: tuple[str, ...]
    unchecked_counts: tuple[str, ...]
    problems: tuple[Problem, ...]
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["problem_counts"] = dict(sorted(Counter(p.code for p in self.problems).items()))
        return data

    def summary(self, max_problems: int = 20) -> str:
        head = (
            f"{self.shards} shards, {self.pairs} pairs, {self.members} members "
            f"({self.member_bytes / 1e6:.1f} MB hashed): "
            + ("OK" if self.ok else f"{len(self.problems)} problem(s)")
        )
        lines = [head]
        lines += [f"  [{p.code}] {p.path}: {p.detail}" for p in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            lines.append(f"  ... {len(self.problems) - max_problems} more in verify.json")
        return "\n".join(lines)


@dataclass
class _State:
    out: Path
    problems: list[Problem] = field(default_factory=list)
    pairs: int = 0
    members: int = 0
    member_bytes: int = 0
    pair_ids: Counter[str] = field(default_factory=Counter)
    group_ids: set[str] = field(default_factory=set)

    def add(self, code: str, path: Path | str, detail: str) -> None:
        assert code in PROBLEM_CODES, code
        rel = Path(path).relative_to(self.out).as_posix() if Path(path).is_absolute() else str(path)
        self.problems.append(Problem(code, rel, detail))


_TAR_RE = re.compile(r"^(?P<subset>[a-z]+)-(?P<index>\d{6})\.tar$")
_PART_RE = re.compile(r"^part-(?P<index>\d{6})\.parquet$")
_MARKER_RE = re.compile(r"^(?P<subset>[a-z]+)-(?P<index>\d{6})\.json$")


def verify(out: str | Path, *, write: bool = True) -> VerifyReport:
    """Verify the build in ``out``; with ``write``, also write ``out/verify.json``."""
    out = Path(out).resolve()
    if not out.is_dir():
        raise FileNotFoundError(f"output directory {out} does not exist")
    state = _State(out)
    for path in sorted(out.rglob("*.partial")):
        state.add("partial_file", path, "left by an unfinished writer")
    shards = _discover_shards(state)
    for subset, index in shards:
        _verify_shard(state, subset, index)
    for pair_id, n in sorted(state.pair_ids.items()):
        if n > 1:
            state.add("duplicate_row", pairs_dir(out), f"pair_id {pair_id!r} occurs {n} times")
    actual = {
        "pairs": state.pairs,
        "groups": len(state.group_ids),
        "shards": len(shards),
        "sources": _table_rows(state, sources_path(out), SOURCES_SCHEMA),
        "accepted": _accepted_sources(sources_path(out)),
        "rejects": _table_rows(state, rejects_path(out), REJECTS_SCHEMA),
        "detections": _table_rows(state, detections_path(out), DETECTIONS_SCHEMA),
    }
    checked, unchecked = _check_dataset_counts(state, actual)
    report = VerifyReport(
        shards=len(shards),
        pairs=state.pairs,
        members=state.members,
        member_bytes=state.member_bytes,
        checked_counts=checked,
        unchecked_counts=unchecked,
        problems=tuple(state.problems),
    )
    if write:
        write_json_atomic(out / "verify.json", report.to_dict())
    return report


def _discover_shards(state: _State) -> list[tuple[str, int]]:
    """Every (subset, index) that has a tar, a part or a marker; strays reported."""
    out = state.out
    found: set[tuple[str, int]] = set()

    def scan(folder: Path, match: Callable[[Path], tuple[str, int] | None]) -> None:
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            if path.name.endswith(".partial"):
                continue
            shard = match(path) if path.is_file() else None
            if shard is None:
                state.add("stray_file", path, "not named by the output layout")
            else:
                found.add(shard)

    def named(regex: re.Pattern[str], subset: str | None) -> Callable[[Path], tuple[str, int] | None]:
        def match(path: Path) -> tuple[str, int] | None:
            m = regex.match(path.name)
            if m is None:
                return None
            found_subset = m.groupdict().get("subset", subset)
            if found_subset not in SUBSETS or (subset is not None and found_subset != subset):
                return None
            return found_subset, int(m["index"])

        return match

    for folder in _subfolders(state, out / "shards", lambda name: name if name in SUBSETS else None):
        scan(folder, named(_TAR_RE, folder.name))
    for folder in _subfolders(state, pairs_dir(out), _partition_subset):
        scan(folder, named(_PART_RE, _partition_subset(folder.name)))
    scan(out / "_markers", named(_MARKER_RE, None))
    return sorted(found)


def _partition_subset(name: str) -> str | None:
    subset = name.removeprefix("subset=")
    return subset if name.startswith("subset=") and subset in SUBSETS else None


def _subfolders(state: _State, root: Path, subset_of: Callable[[str], str | None]) -> list[Path]:
    if not root.is_dir():
        return []
    folders = []
    for path in sorted(root.iterdir()):
        if path.name.endswith(".partial"):
            continue
        if path.is_dir() and subset_of(path.name) is not None:
            folders.append(path)
        else:
            state.add("stray_file", path, "not named by the output layout")
    return folders


def _verify_shard(state: _State, subset: str, index: int) -> None:
    out = state.out
    name = shard_name(subset, index)
    tar_path = shard_tar_path(out, subset, index)
    part_path = pairs_part_path(out, subset, index)
    rows = _read_rows(state, subset, index, part_path)
    members = None
    if tar_path.is_file():
        members = _read_members(state, tar_path)
    else:
        state.add("missing_tar", tar_path, f"shard {name} has no tar")
    if members is not None and rows is not None:
        _match_rows_and_members(state, tar_path, rows, members)
    where = marker_path(out, subset, index)
    try:
        marker = read_marker(out, subset, index)
    except ValueError as exc:
        state.add("marker_mismatch", where, str(exc))
        return
    if marker is None:
        state.add("missing_marker", where, f"shard {name} has no marker")
        return
    for detail in marker_mismatches(out, subset, index, marker, full_hash=True):
        state.add("marker_mismatch", where, detail)
    counts = marker.get("counts", {})
    if rows is not None and counts.get("pairs") != len(rows):
        state.add("marker_mismatch", where,
                  f"marker counts {counts.get('pairs')} pairs, part has {len(rows)}")
    if members is not None and counts.get("members") != members.count:
        state.add("marker_mismatch", where,
                  f"marker counts {counts.get('members')} members, tar has {members.count}")


def _read_rows(state: _State, subset: str, index: int, part_path: Path) -> list[dict] | None:
    name = shard_name(subset, index)
    if not part_path.is_file():
        state.add("missing_part", part_path, f"shard {name} has no pairs part")
        return None
    try:
        rows = read_table(part_path, PAIRS_SCHEMA).to_pylist()
    except (ValueError, OSError, pa.ArrowException) as exc:
        state.add("bad_table", part_path, str(exc).splitlines()[0])
        return None
    for row in rows:
        state.pairs += 1
        state.pair_ids[row["pair_id"]] += 1
        state.group_ids.add(row["group_id"])
        where = f"pair {row['pair_id']!r}"
        if row["subset"] != subset:
            state.add("row_mismatch", part_path,
                      f"{where}: subset {row['subset']!r}, partition is {subset!r}")
        if row["shard"] != name:
            state.add("row_mismatch", part_path, f"{where}: shard {row['shard']!r}, expected {name!r}")
        if row["key"] != row["pair_id"]:
            state.add("row_mismatch", part_path, f"{where}: key {row['key']!r} differs from pair_id")
        if not row["pair_id"].startswith(row["group_id"] + "-v"):
            state.add("row_mismatch", part_path, f"{where}: not a view of group {row['group_id']!r}")
    return rows


@dataclass
class _Members:
    """Per key: suffix -> sha256 of the members read from one tar."""

    by_key: dict[str, dict[str, str]]
    count: int
    corrupt: bool


def _read_members(state: _State, tar_path: Path) -> _Members:
    by_key: dict[str, dict[str, str]] = {}
    count = 0
    previous = ""
    corrupt = False
    try:
        for member in iter_tar_members(tar_path):
            count += 1
            state.members += 1
            state.member_bytes += len(member.data)
            if member.name <= previous:
                state.add("member_order", tar_path, f"{member.name!r} after {previous!r}")
            previous = member.name
            suffixes = by_key.setdefault(member.key, {})
            if member.suffix in suffixes:
                state.add("extra_member", tar_path, f"duplicate member {member.name!r}")
            suffixes[member.suffix] = sha256_hex(member.data)
    except UnsafeTarError as exc:
        state.add("corrupt_tar", tar_path, str(exc).removeprefix(f"{tar_path}: "))
        corrupt = True
    return _Members(by_key, count, corrupt)


def _match_rows_and_members(state: _State, tar_path: Path, rows: list[dict], members: _Members) -> None:
    row_keys = set()
    for row in rows:
        key = row["key"]
        row_keys.add(key)
        try:
            sha_columns = member_sha_columns(row["image_format"])
        except ValueError as exc:
            state.add("row_mismatch", tar_path, f"pair {key!r}: {exc}")
            continue
        found = members.by_key.get(key, {})
        for suffix, column in sha_columns.items():
            if suffix not in found:
                if not members.corrupt:
                    state.add("missing_member", tar_path, f"{key}.{suffix}")
            elif found[suffix] != row[column]:
                state.add("checksum", tar_path, f"{key}.{suffix}: sha256 differs from {column}")
        for suffix in sorted(set(found) - set(sha_columns)):
            state.add("extra_member", tar_path,
                      f"{key}.{suffix} is not a member of a {row['image_format']} pair")
    for key in sorted(set(members.by_key) - row_keys):
        for suffix in sorted(members.by_key[key]):
            state.add("extra_member", tar_path, f"{key}.{suffix} has no pair row")


def _table_rows(state: _State, path: Path, schema: pa.Schema) -> int | None:
    """Row count of an optional table (None if absent); schema mismatch reported."""
    if not path.is_file():
        return None
    try:
        return count_rows(path, schema)
    except (ValueError, OSError, pa.ArrowException) as exc:
        state.add("bad_table", path, str(exc).splitlines()[0])
        return None


def _accepted_sources(path: Path) -> int | None:
    """Sources with status "accepted"; None without a sources table or when it is
    unreadable (``_table_rows`` reports that as ``bad_table``)."""
    if not path.is_file():
        return None
    try:
        status = pq.read_table(path, columns=["status"], partitioning=None).column("status")
    except (OSError, KeyError, pa.ArrowException):
        return None
    return pc.sum(pc.equal(status, "accepted")).as_py() or 0


def _check_dataset_counts(
    state: _State, actual: dict[str, int | None]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Compare ``dataset.json``'s ``counts`` with ``actual``; returns (checked, unchecked) keys."""
    path = state.out / "dataset.json"
    if not path.is_file():
        return (), ()
    try:
        counts = json.loads(path.read_text(encoding="utf-8")).get("counts", {})
    except (json.JSONDecodeError, AttributeError) as exc:
        state.add("count_mismatch", path, f"dataset.json is not a JSON object with 'counts': {exc}")
        return (), ()
    checked, unchecked = [], []
    for key in sorted(counts):
        if key not in actual:
            unchecked.append(key)
            continue
        checked.append(key)
        if counts[key] != actual[key]:
            found = "no such table" if actual[key] is None else actual[key]
            state.add("count_mismatch", path, f"counts.{key} = {counts[key]}, manifests have {found}")
    return tuple(checked), tuple(unchecked)

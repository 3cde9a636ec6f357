"""The training gate: train only on shards a full verification passed, unchanged since.

The verify report (``mirrorset verify`` writes it, by default ``ROOT/verify.json``)::

    {"ok": true, "mode": "full" | "quick" | "sample", "problems": [...],
     "shards": [{"subset": "simulated", "url": "shards/simulated/simulated-000000.tar",
                 "sha256": "<hex>", "nsamples": 88, "filesize": 28416000, "mtime_ns": ...}]}

``url`` is relative to the dataset root. Only a report with ``ok`` and ``mode == "full"``
qualifies. For every subset that has a shard index the gate requires the same set of
shards in index and report, equal sha256 / nsamples / filesize, and every tar on disk
with the reported size and ``mtime_ns``. It does not re-hash the tars (that is the
verify stage's job): a tar rewritten after verification has a new mtime, and one put
back with its old mtime forged is outside what the gate can see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pipeline.training.index import IndexedShard, ShardIndexError, index_path, read_shard_index

#: Report fields every shard entry must carry, with their JSON types.
SHARD_FIELDS = {"subset": str, "url": str, "sha256": str, "nsamples": int, "filesize": int, "mtime_ns": int}
_COMPARED = ("sha256", "nsamples", "filesize")
_MAX_LISTED = 5


class GateRefused(RuntimeError):
    """Training may not start; ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check_gate(dataset_root: str | Path, report_path: str | Path, subsets: Iterable[str]) -> list[str]:
    """Problems that forbid training on ``subsets`` of the dataset at ``dataset_root``;
    an empty list means go. A subset with neither an index nor reported shards is absent
    (not a problem); at least one subset must be present."""
    root, report_path, subsets = Path(dataset_root), Path(report_path), tuple(subsets)
    if not report_path.is_file():
        return [f"verify report {report_path} does not exist"]
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"verify report {report_path} is unreadable: {exc}"]
    problems = _report_problems(report_path, report)
    if problems:
        return problems
    present = []
    for subset in subsets:
        reported = [s for s in report["shards"] if s["subset"] == subset]
        try:
            indexed = read_shard_index(root, subset)
        except ShardIndexError as exc:
            problems.append(str(exc))
            continue
        if indexed is None:
            if reported:
                problems.append(
                    f"the verify report lists {len(reported)} shard(s) of subset {subset!r}, "
                    f"but {index_path(root, subset)} does not exist"
                )
            continue
        present.append(subset)
        problems += _compare(root, subset, indexed, reported)
    if not present and not problems:
        problems.append(f"no shard index in {root / 'shards'} for any of the subsets {list(subsets)}")
    return problems


def _report_problems(path: Path, report: object) -> list[str]:
    if not isinstance(report, dict):
        return [f"verify report {path} is not a JSON object"]
    if report.get("mode") != "full":
        return [f"verify report {path} has mode {report.get('mode')!r}; training needs a full verification"]
    found = report.get("problems")
    if report.get("ok") is not True or not isinstance(found, list) or found:
        listed = [json.dumps(p, sort_keys=True) for p in found[:_MAX_LISTED]] if isinstance(found, list) else []
        return [f"verify report {path} did not pass: ok={report.get('ok')!r}, problems: {listed or found!r}"]
    shards = report.get("shards")
    if not isinstance(shards, list):
        return [f"verify report {path} has no 'shards' list"]
    for i, shard in enumerate(shards):
        if not isinstance(shard, dict):
            return [f"verify report {path}: shards[{i}] is not an object"]
        for key, kind in SHARD_FIELDS.items():
            value = shard.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                return [f"verify report {path}: shards[{i}].{key} must be a {kind.__name__}, got {value!r}"]
    return []


def _compare(root: Path, subset: str, indexed: tuple[IndexedShard, ...], reported: list[dict]) -> list[str]:
    problems = []
    by_url = {}
    for entry in reported:
        if entry["url"] in by_url:
            problems.append(f"{entry['url']}: listed twice in the verify report")
        by_url[entry["url"]] = entry
    index_urls = [s.url for s in indexed]
    for url in sorted({u for u in index_urls if index_urls.count(u) > 1}):
        problems.append(f"{url}: listed twice in {index_path(root, subset)}")
    for url in sorted(set(by_url) - set(index_urls)):
        problems.append(f"{url}: verified, but no longer in the shard index of {subset!r}")
    for shard in indexed:
        entry = by_url.get(shard.url)
        if entry is None:
            problems.append(f"{shard.url}: in the shard index of {subset!r} but not in the verify report")
            continue
        for key in _COMPARED:
            if getattr(shard, key) != entry[key]:
                problems.append(
                    f"{shard.url}: {key} is {getattr(shard, key)!r} in the shard index "
                    f"but {entry[key]!r} in the verify report"
                )
        problems += _disk_problems(root, entry)
    return problems


def _disk_problems(root: Path, entry: dict) -> list[str]:
    url = entry["url"]
    try:
        stat = (root / url).stat()
    except FileNotFoundError:
        return [f"{url}: shard missing on disk"]
    except OSError as exc:
        return [f"{url}: cannot stat the shard: {exc}"]
    problems = []
    if stat.st_size != entry["filesize"]:
        problems.append(f"{url}: size is {stat.st_size} bytes on disk, {entry['filesize']} when verified")
    if stat.st_mtime_ns != entry["mtime_ns"]:
        problems.append(f"{url}: modified after verification (mtime_ns {stat.st_mtime_ns}, verified {entry['mtime_ns']})")
    return problems

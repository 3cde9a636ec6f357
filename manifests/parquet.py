"""Atomic, deterministic Parquet writing with an explicit schema.

Rows are plain dicts that must hold exactly the schema's fields; values are
converted by pyarrow with the schema's types (no inference). Writer options are
fixed, so the same rows written with the same pyarrow version give the same
bytes. Files are written to ``.<name>.partial`` and renamed into place on a
successful close; on an exception the temporary file is removed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.schema import partial_path

#: Rows per row group (and per in-memory batch); part of the byte-level contract.
ROW_GROUP_ROWS = 4096

_WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
    "store_schema": True,
}

#: Columns tried, in order, to name a row in error messages.
_ID_COLUMNS = ("pair_id", "key", "source_id", "path")


def row_label(row: Mapping[str, Any], index: int) -> str:
    """``"row 3 (pair_id='...')"``: how errors name a row."""
    for column in _ID_COLUMNS:
        if row.get(column) is not None:
            return f"row {index} ({column}={row[column]!r})"
    return f"row {index}"


def check_row(row: Mapping[str, Any], schema: pa.Schema, index: int = 0) -> None:
    """Raise ValueError unless ``row`` has exactly ``schema``'s fields and no null
    in a non-nullable one."""
    if not isinstance(row, Mapping):
        raise ValueError(f"row {index}: expected a mapping, got {type(row).__name__}")
    names = set(schema.names)
    missing = sorted(names - set(row))
    extra = sorted(set(row) - names)
    if missing or extra:
        raise ValueError(
            f"{row_label(row, index)} does not match the schema: "
            f"missing field(s) {missing}, extra field(s) {extra}"
        )
    for field in schema:
        if not field.nullable and row[field.name] is None:
            raise ValueError(f"{row_label(row, index)}: field {field.name!r} must not be null")


class ParquetPartWriter:
    """Stream rows into one Parquet file, committed atomically on close.

    Use as a context manager; ``write(row)`` validates each row and buffers it,
    full batches of ``ROW_GROUP_ROWS`` become row groups. Leaving the block
    normally renames ``.<name>.partial`` to ``path``; an exception removes it.
    """

    def __init__(self, path: str | Path, schema: pa.Schema) -> None:
        self.path = Path(path)
        self.schema = schema
        self.tmp_path = partial_path(self.path)
        self.rows_written = 0
        self._batch: list[Mapping[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._closed = False

    def __enter__(self) -> ParquetPartWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.tmp_path, self.schema, **_WRITER_OPTIONS)
        return self

    def write(self, row: Mapping[str, Any]) -> None:
        if self._writer is None or self._closed:
            raise RuntimeError("ParquetPartWriter.write outside its `with` block")
        check_row(row, self.schema, self.rows_written + len(self._batch))
        self._batch.append(row)
        if len(self._batch) >= ROW_GROUP_ROWS:
            self._flush()

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        if not self._batch:
            return
        assert self._writer is not None
        first = self.rows_written
        try:
            table = pa.Table.from_pylist(self._batch, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ValueError(
                f"rows {first}..{first + len(self._batch) - 1} of {self.path.name} "
                f"do not convert to the schema: {exc}"
            ) from exc
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows_written += len(self._batch)
        self._batch = []

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._flush()
        except BaseException:
            self._abort()
            raise
        if exc_type is not None:
            self._abort()
            return
        self._closed = True
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        _fsync(self.tmp_path)
        os.replace(self.tmp_path, self.path)

    def _abort(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.tmp_path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(path: str | Path, rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> int:
    """Write ``rows`` to ``path`` atomically with ``schema``; returns the row count."""
    with ParquetPartWriter(path, schema) as writer:
        writer.write_many(rows)
    return writer.rows_written


def _check_schema(path: str | Path, found: pa.Schema, schema: pa.Schema) -> None:
    if not found.equals(schema, check_metadata=False):
        raise ValueError(f"{path}: schema differs from the expected one:\n{found}")


def read_table(path: str | Path, schema: pa.Schema | None = None) -> pa.Table:
    """Read one Parquet file (no hive partition inference); with ``schema``, raise
    ValueError if the file's schema differs from it (metadata ignored)."""
    table = pq.read_table(path, partitioning=None)
    if schema is not None:
        _check_schema(path, table.schema, schema)
    return table


def count_rows(path: str | Path, schema: pa.Schema) -> int:
    """Row count of one Parquet file from its footer, after checking its schema."""
    parquet_file = pq.ParquetFile(path)
    _check_schema(path, parquet_file.schema_arrow, schema)
    return parquet_file.metadata.num_rows

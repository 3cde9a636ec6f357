"""Deterministic Parquet parts with an explicit schema, committed through a Store.

Rows are plain dicts that must hold exactly the schema's fields; values are
converted by pyarrow with the schema's types (no inference). Writer options are
fixed, so the same rows written with the same pyarrow version give the same
bytes. Commits follow ``manifests.storage`` (temporary name then rename locally,
one completed upload on object stores).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.storage import Store, Written

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


def encode_rows(rows: Iterable[Mapping[str, Any]], schema: pa.Schema, name: str = "table") -> bytes:
    """Parquet bytes of ``rows`` with ``schema`` (each row checked first); same rows, same bytes.

    ``name`` labels conversion errors. Parts are small (one task's rows), so they are
    built in memory and committed in one write.
    """
    rows = list(rows)
    for index, row in enumerate(rows):
        check_row(row, schema, index)
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ValueError(f"rows of {name} do not convert to the schema: {exc}") from exc
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=ROW_GROUP_ROWS, **_WRITER_OPTIONS)
    return buffer.getvalue()


def write_rows(store: Store, rel: str, rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> Written:
    """Commit ``rows`` as the Parquet file ``rel`` of ``store`` (atomic; see manifests.storage)."""
    return store.write_bytes(rel, encode_rows(rows, schema, rel))


def _check_schema(path: str, found: pa.Schema, schema: pa.Schema) -> None:
    if not found.equals(schema, check_metadata=False):
        raise ValueError(f"{path}: schema differs from the expected one:\n{found}")


def read_part(store: Store, rel: str, schema: pa.Schema | None = None, **kwargs: Any) -> pa.Table:
    """One Parquet file of ``store`` (no hive partition inference); with ``schema``, raise
    ValueError if the file's schema differs from it (metadata ignored). ``kwargs`` go to
    :meth:`Store.read_table` (``columns``, ``filters``)."""
    table = store.read_table(rel, **kwargs)
    if schema is not None and not kwargs.get("columns"):
        _check_schema(store.uri(rel), table.schema, schema)
    return table


def read_parts(store: Store, folder: str, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
    """All parts directly in ``folder`` concatenated in name order (empty table if none)."""
    tables = [store.read_table(rel, columns=columns, filters=filters) for rel in store.list(folder, ".parquet")]
    if not tables:
        return pa.table({name: [] for name in (columns or [])})
    return pa.concat_tables(tables)


def count_rows(store: Store, rel: str, schema: pa.Schema) -> int:
    """Row count of one Parquet file from its footer, after checking its schema."""
    with store.open_read(rel) as f:
        parquet_file = pq.ParquetFile(f)
        _check_schema(store.uri(rel), parquet_file.schema_arrow, schema)
        return parquet_file.metadata.num_rows

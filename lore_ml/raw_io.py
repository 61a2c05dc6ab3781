"""Tolerant readers for raw drops: every input row comes out, good or bad, as strings.

Spark engines differ on broken input (Sail's CSV/JSON readers fail the whole file on one bad
line; JVM Spark silently replaces invalid UTF-8). Ingest therefore *stages* each raw drop
first: CSV, JSON lines and Parquet are read here with pyarrow, every field becomes a string,
and a row that cannot be read at all (malformed CSV, broken JSON, invalid UTF-8) is kept with
``_error`` set and its raw text in ``_record`` (a whole file that cannot be read is one such row,
its path as the record). Typing and business validation then happen in
Spark (``jobs.ingest``), so the staged row count is exactly the input row count.

Staged columns: the expected fields (string), ``_line`` (int64, order within the drop),
``_source_file``, ``_error`` (null when readable), ``_record`` (raw text of unreadable rows).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import posixpath
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lore_ml.storage import filesystem

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
META_COLUMNS = ("_line", "_source_file", "_error", "_record")
BATCH_ROWS = 200_000

log = logging.getLogger("lore.raw_io")


@dataclass
class StagedDrop:
    files: int
    rows: int
    unreadable: int


def find_drop_files(folder: str) -> tuple[pafs.FileSystem, list[str]]:
    """Raw files of one drop folder (a local path or a storage URI): the folder's filesystem and
    the files' paths on it, by known extension, in a stable order."""
    fs, path = filesystem(folder)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return fs, []
    listing = fs.get_file_info(pafs.FileSelector(path))
    return fs, sorted(f.path for f in listing if f.type == pafs.FileType.File and _extension(f.path) in FORMATS)


def _extension(path: str) -> str:
    return posixpath.splitext(path)[1].lower()


def stage_drop(
    files: Sequence[str],
    fields: Sequence[str],
    sink,
    on_rows: Callable[[int], None] | None = None,
    fs: pafs.FileSystem | None = None,
) -> StagedDrop:
    """Convert raw files (paths on ``fs``, local by default) to one Parquet file of string columns
    (see module doc), written to ``sink``: a local path or a pyarrow output stream (a staging
    area on the lakehouse's storage)."""
    fs = fs or pafs.LocalFileSystem()
    schema = pa.schema([(f, pa.string()) for f in fields] + [
        ("_line", pa.int64()), ("_source_file", pa.string()), ("_error", pa.string()), ("_record", pa.string())
    ])
    rows = unreadable = line = 0
    with pq.ParquetWriter(sink, schema) as writer:
        for path in map(str, files):
            for batch in _file_batches(fs, path, fields):
                n = batch.num_rows
                batch = batch.append_column("_line", pa.array(range(line, line + n), pa.int64()))
                batch = batch.append_column("_source_file", pa.array([posixpath.basename(path)] * n, pa.string()))
                writer.write_table(batch.select(schema.names).cast(schema))
                unreadable += n - batch.column("_error").null_count
                rows += n
                line += n
                if on_rows:
                    on_rows(n)
    return StagedDrop(len(files), rows, unreadable)


def _file_batches(fs: pafs.FileSystem, path: str, fields: Sequence[str]) -> Iterator[pa.Table]:
    """The file's rows as string tables. An empty file has no rows. A file the format's reader
    rejects (a truncated Parquet file, a CSV that is not text) becomes one unreadable row naming
    it, after any rows read before the error, so one broken file neither stops the drop nor
    vanishes from its counts. Storage errors (``OSError``) are raised: a retry may read the file."""
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[FORMATS[_extension(path)]]
    rows = 0
    try:
        for batch in reader(fs, path, fields):
            rows += batch.num_rows
            yield batch
    except OSError as exc:
        raise OSError(f"cannot read {path}: {exc}") from exc
    except pa.ArrowInvalid as exc:
        if fs.get_file_info(path).size == 0:
            log.warning("%s is empty: no rows", path)
            return
        log.warning("%s is unreadable after %d rows, quarantined as one row: %s", path, rows, exc)
        yield _unreadable([path], fields, f"unreadable file after {rows} rows: {exc}")


def _strings_from_binary(table: pa.Table, fields: Sequence[str]) -> pa.Table:
    """Decode binary columns as UTF-8; rows with invalid bytes get ``_error`` and raw ``_record``."""
    columns, errors = {}, [None] * table.num_rows
    for name in fields:
        col = table.column(name) if name in table.column_names else pa.nulls(table.num_rows, pa.binary())
        try:
            columns[name] = col.cast(pa.string())
        except pa.ArrowInvalid:
            values = []
            for i, raw in enumerate(col.to_pylist()):
                try:
                    values.append(None if raw is None else raw.decode("utf-8"))
                except UnicodeDecodeError:
                    values.append(None)
                    errors[i] = errors[i] or f"{name}: invalid UTF-8"
            columns[name] = pa.array(values, pa.string())
    records = [None] * table.num_rows
    if any(errors):
        raw_rows = table.select([f for f in fields if f in table.column_names]).to_pylist()
        for i, err in enumerate(errors):
            if err:
                records[i] = json.dumps({k: v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v
                                         for k, v in raw_rows[i].items()})
    columns["_error"] = pa.array(errors, pa.string())
    columns["_record"] = pa.array(records, pa.string())
    return pa.table(columns)


def _read_csv(fs: pafs.FileSystem, path: str, fields: Sequence[str]) -> Iterator[pa.Table]:
    """Arrow's CSV reader, one pass; malformed rows come out at the end. Where Arrow gives up on
    the file before its first batch (it cannot hand over a malformed row that is not UTF-8 text),
    the file is read again line by line (:func:`_read_csv_lines`)."""
    bad_rows: list[str] = []

    def keep_bad_row(row) -> str:
        bad_rows.append(row.text)
        return "skip"

    # Only the expected fields are read, as bytes (decoded below, row by row where needed); one
    # missing from the header comes out null. One pass over the file: on an object store, one GET.
    convert = pacsv.ConvertOptions(column_types={name: pa.binary() for name in fields}, strings_can_be_null=False,
                                   include_columns=list(fields), include_missing_columns=True)
    parse = pacsv.ParseOptions(invalid_row_handler=keep_bad_row, newlines_in_values=False)
    batches = 0
    try:
        with fs.open_input_stream(path) as raw:
            reader = pacsv.open_csv(raw, read_options=pacsv.ReadOptions(block_size=8 << 20), parse_options=parse,
                                    convert_options=convert)
            for batch in reader:
                yield _empty_to_null(_strings_from_binary(pa.Table.from_batches([batch]), fields), fields)
                batches += 1
    except pa.ArrowInvalid:
        if not batches and fs.get_file_info(path).size:
            log.warning("%s: Arrow's CSV reader gave up; reading it line by line", path)
            yield from _read_csv_lines(fs, path, fields)
            return
        yield from _malformed(bad_rows, fields)  # those met before the error still come out
        raise
    yield from _malformed(bad_rows, fields)


def _malformed(bad_rows: list[str], fields: Sequence[str]) -> Iterator[pa.Table]:
    if bad_rows:
        yield _unreadable(bad_rows, fields, "malformed CSV row (wrong number of fields)")


def _read_csv_lines(fs: pafs.FileSystem, path: str, fields: Sequence[str]) -> Iterator[pa.Table]:
    """The slow, tolerant CSV path: one physical line per row (as for Arrow, values hold no line
    breaks), each decoded and split on its own."""
    with fs.open_input_stream(path) as stream:
        lines = (raw.rstrip(b"\r\n") for raw in io.BufferedReader(stream))
        header = next(csv.reader([next(lines, b"").decode("utf-8-sig", "replace")]), [])
        yield from _batched((_parse_csv_line(raw, header, fields) for raw in lines if raw), fields)


def _parse_csv_line(raw: bytes, header: Sequence[str], fields: Sequence[str]) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {"_error": f"invalid UTF-8 at byte {exc.start}", "_record": raw.decode("utf-8", "backslashreplace")}
    values = next(csv.reader([text]), [])
    if len(values) != len(header):
        return {"_error": "malformed CSV row (wrong number of fields)", "_record": text}
    return {name: value or None for name, value in zip(header, values) if name in fields}


def _empty_to_null(table: pa.Table, fields: Sequence[str]) -> pa.Table:
    """CSV has no null: an empty field means missing."""
    for name in fields:
        col = table.column(name)
        table = table.set_column(table.column_names.index(name), name, pc.if_else(pc.equal(col, ""), None, col))
    return table


def _read_jsonl(fs: pafs.FileSystem, path: str, fields: Sequence[str]) -> Iterator[pa.Table]:
    with fs.open_input_stream(path) as stream:
        yield from _batched((_parse_json_line(raw.rstrip(b"\r\n"), fields) for raw in io.BufferedReader(stream)),
                            fields)


def _batched(rows: Iterable[dict], fields: Sequence[str]) -> Iterator[pa.Table]:
    """Parsed rows as string tables of up to ``BATCH_ROWS`` rows."""
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield _table(batch, fields)
            batch = []
    if batch:
        yield _table(batch, fields)


def _parse_json_line(raw: bytes, fields: Sequence[str]) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {"_error": f"invalid UTF-8 at byte {exc.start}", "_record": raw.decode("utf-8", "backslashreplace")}
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return {"_error": f"malformed JSON: {exc.msg}", "_record": text}
    if not isinstance(obj, dict):
        return {"_error": "malformed JSON: not an object", "_record": text}
    return {f: _as_text(obj.get(f)) for f in fields}


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _read_parquet(fs: pafs.FileSystem, path: str, fields: Sequence[str]) -> Iterator[pa.Table]:
    with fs.open_input_file(path) as handle:
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS):
            table = pa.Table.from_batches([batch])
            columns = {}
            for name in fields:
                if name not in table.column_names:
                    columns[name] = pa.nulls(table.num_rows, pa.string())
                elif pa.types.is_timestamp(table.column(name).type):
                    utc = pc.cast(table.column(name), pa.timestamp("us", tz="UTC"))
                    columns[name] = pc.strftime(utc, format="%Y-%m-%d %H:%M:%S")
                else:
                    columns[name] = pc.cast(table.column(name), pa.string())
            columns["_error"] = pa.nulls(table.num_rows, pa.string())
            columns["_record"] = pa.nulls(table.num_rows, pa.string())
            yield pa.table(columns)


def _table(rows: list[dict], fields: Sequence[str]) -> pa.Table:
    names = list(fields) + ["_error", "_record"]
    return pa.table({name: pa.array([row.get(name) for row in rows], pa.string()) for name in names})


def _unreadable(texts: list[str], fields: Sequence[str], reason: str) -> pa.Table:
    return _table([{"_error": reason, "_record": text} for text in texts], fields)

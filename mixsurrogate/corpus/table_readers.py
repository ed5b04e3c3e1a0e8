"""Text columns of Parquet files and Arrow files (Hugging Face ``datasets`` ``save_to_disk``).

Read in record batches of at most ``batch_rows`` rows, never a whole file: Parquet through
``ParquetFile.iter_batches`` (only the text column, read in buffered pieces of
``PARQUET_BUFFER`` bytes, without pyarrow's read-ahead), Arrow through the IPC stream or file
reader over a memory map (``datasets`` writes its ``data-*.arrow`` shards as IPC streams; their
``dataset_info.json``/``state.json`` are not needed): its pages are the file's, which the
kernel can drop again, so a record batch of any size is never copied whole. pyarrow is imported only here and only
when a folder holds such files, so the rest of the tool runs without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import CorpusError

TABLE_SUFFIXES = (".parquet", ".arrow")
DEFAULT_BATCH_ROWS = 1024
PARQUET_BUFFER = 1 << 20  # bytes read at a time from a Parquet column chunk


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as err:
        raise CorpusError(
            "reading .parquet/.arrow files needs pyarrow: pip install pyarrow"
        ) from err
    return pyarrow


def _arrow_reader(path: Path):
    """An Arrow IPC stream reader (what ``datasets`` writes) or, failing that, a file reader."""
    pa = _pyarrow()
    source = pa.memory_map(str(path))
    try:
        return pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source)


def _arrow_batches(reader) -> Iterator:
    if hasattr(reader, "num_record_batches"):  # IPC file format
        for k in range(reader.num_record_batches):
            yield reader.get_batch(k)
    else:
        yield from reader


def table_schema(path: Path):
    """The file's Arrow schema (reads the footer or the stream header only)."""
    pa = _pyarrow()
    try:
        if path.name.endswith(".parquet"):
            return pa.parquet.ParquetFile(str(path)).schema_arrow
        return _arrow_reader(path).schema
    except (pa.ArrowException, OSError) as err:
        kind = "Parquet" if path.name.endswith(".parquet") else "Arrow"
        raise CorpusError(f"{path}: cannot read as {kind} ({err})") from err


def check_text_field(path: Path, field: str) -> None:
    """One clear line when the file has no column ``field`` or it does not hold strings."""
    pa = _pyarrow()
    schema = table_schema(path)
    if field not in schema.names:
        raise CorpusError(
            f"{path}: no text field {field!r} (--text-field); its columns: {', '.join(schema.names) or 'none'}"
        )
    kind = schema.field(field).type
    is_text = [pa.types.is_string, pa.types.is_large_string]
    if hasattr(pa.types, "is_string_view"):
        is_text.append(pa.types.is_string_view)
    if not any(test(kind) for test in is_text):
        raise CorpusError(f"{path}: column {field!r} holds {kind}, not text (--text-field)")


def iter_text_batches(
    path: Path, field: str, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[list[str | None]]:
    """The column ``field`` in lists of at most ``batch_rows`` values (None for a null), in
    row order."""
    if batch_rows < 1:
        raise CorpusError(f"batch_rows must be at least 1, got {batch_rows}")
    pa = _pyarrow()
    check_text_field(path, field)
    try:
        if path.name.endswith(".parquet"):
            # pre_buffer (pyarrow's default) reads ahead whole column chunks and the peak memory
            # then grows with the file; buffered reads of PARQUET_BUFFER bytes keep it flat
            handle = pa.parquet.ParquetFile(str(path), pre_buffer=False, buffer_size=PARQUET_BUFFER)
            for batch in handle.iter_batches(batch_size=batch_rows, columns=[field]):
                # iter_batches already keeps to batch_size; the slices are a no-op guarantee
                for start in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(start, batch_rows).column(0).to_pylist()
        else:
            reader = _arrow_reader(path)
            index = reader.schema.get_field_index(field)
            for batch in _arrow_batches(reader):
                for start in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(start, batch_rows).column(index).to_pylist()
    except pa.ArrowException as err:
        raise CorpusError(f"{path}: cannot read ({err})") from err

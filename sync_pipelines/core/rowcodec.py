"""The row path's three codecs: response bytes → records, a record → `jsonb` text, rows → `COPY`.

Each is a faster spelling of what the standard path did (``requests``' ``.json()``, ``json.dumps``,
psycopg's ``copy.write_row``), with the same result; wherever the fast one could differ, the
input goes the old way instead:

- ``response_json``: msgspec parses a UTF-8 body, to the same values as ``json.loads`` (integers
  of any size exact, floats correctly rounded, the last of duplicate keys); a body it refuses (a
  BOM, another charset, invalid UTF-8, `NaN`, a lone surrogate, ``1e400``) is left to
  ``.json()``, which gives the old result or raises the old error. That fallback marks non-finite
  numbers (`NaN`, `Infinity`, ``1e400``) so that ``dumps_json`` writes them as before. Parsing
  runs with the cyclic garbage collector paused: a page of orders is tens of thousands of dicts
  and lists, and in a process as large as a Dagster run every few thousand of them set off a
  collection over the whole heap, which cost more than the parse itself. Parsed JSON holds no
  reference cycles, so nothing is left for the collector that it would have freed.
- ``dumps_json``: orjson serializes a record; anything orjson would write differently from
  ``json.dumps`` (non-finite floats, marked above; integers beyond 64 bits; datetimes, dataclasses
  and subclasses of builtins, which orjson handles and ``json.dumps`` may refuse) falls back to
  ``json.dumps``. The text may differ in spelling (non-ASCII unescaped, ``1e16`` for ``1e+16``),
  never in the `jsonb` value: PostgreSQL parses both to the same value, and a ``\\u0000`` escape
  is written (and refused by `jsonb`) exactly as before.
- ``copy_rows``: writes rows as `COPY` text lines built here for the value types rows hold (None,
  str, int, datetime), escaped as psycopg escapes them, datetimes in ISO 8601 (psycopg writes
  ``str(datetime)``, the same with a space for the ``T``: PostgreSQL reads the same instant),
  refusing U+0000 in text with psycopg's own error; a row holding any other type, or a connection
  whose encoding is not UTF-8, goes through ``copy.write_row`` as before.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import orjson
import psycopg

_UTF8 = frozenset({"utf-8", "utf8", "utf_8"})
_DECODER = msgspec.json.Decoder()
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


class NonFinite(float):
    """A `NaN`/`Infinity` (or overflowing) number parsed by the fallback parser; orjson refuses
    to serialize a float subclass, so ``dumps_json`` writes it with ``json.dumps``, as before."""


def _parse_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(value)


def _parse_constant(text: str) -> float:
    return NonFinite(text)  # "NaN", "Infinity", "-Infinity"


def loads_bytes(content: bytes) -> Any:
    """``json.loads(content.decode())`` for the UTF-8 JSON msgspec accepts (the same values);
    raises ``ValueError`` (msgspec.DecodeError) for anything else."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _DECODER.decode(content)
    finally:
        if paused:
            gc.enable()


def response_json(resp: Any) -> Any:
    """``resp.json()``, faster: msgspec for a UTF-8 body it accepts, else ``resp.json()`` itself
    (same value, same ``requests.exceptions.JSONDecodeError``)."""
    encoding = resp.encoding
    if encoding is None or encoding.lower() in _UTF8:
        try:
            return loads_bytes(resp.content)
        except ValueError:
            pass
    return resp.json(parse_float=_parse_float, parse_constant=_parse_constant)


def dumps_json(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"))``, faster; the same `jsonb` value."""
    try:
        return orjson.dumps(value, option=_ORJSON_STRICT).decode()
    except TypeError:  # orjson.JSONEncodeError: beyond 64 bits, NonFinite, a passthrough type
        return json.dumps(value, separators=(",", ":"))


# ----------------------------------------------------------------------------------- COPY text
# What psycopg escapes in COPY text (psycopg._copy_base._dump_re), backslash first. Escaping works
# on the UTF-8 bytes, as psycopg's does: no byte of a multi-byte sequence is ASCII.
_ESCAPES = ((b"\t", b"\\t"), (b"\n", b"\\n"), (b"\r", b"\\r"), (b"\b", b"\\b"), (b"\v", b"\\v"), (b"\f", b"\\f"))
_FLUSH_BYTES = 1 << 20


def _escape(part: bytes) -> bytes:
    if b"\x00" in part:  # psycopg's str dumper refuses it, with this error
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    part = part.replace(b"\\", b"\\\\")
    for char, escaped in _ESCAPES:
        if char in part:
            part = part.replace(char, escaped)
    return part


def text_line(row: Sequence[Any]) -> bytes | None:
    """One `COPY` text line (UTF-8, with its newline) for `row`, or None when a value is of a type
    left to psycopg. Values are written as psycopg's text dumpers write them: str as is (escaped),
    int in decimal, datetime in ISO 8601 (psycopg: ``str(datetime)``), None as ``\\N``."""
    parts = []
    append = parts.append
    nulls = 0
    for value in row:
        kind = type(value)
        if kind is str:
            append(value.encode())
        elif value is None:
            append(b"\\N")
            nulls += 1
        elif kind is int:
            append(b"%d" % value)
        elif kind is datetime:
            append(value.isoformat().encode())  # psycopg writes str(value): the same, " " for "T"
        else:
            return None
    line = b"\t".join(parts)
    # Most lines need no escaping: a few byte scans over the whole line tell (a regex search, or
    # scans per value, cost several times more); only a line that does is built again.
    if (line.count(b"\\") != nulls or line.count(b"\t") != len(parts) - 1 or b"\n" in line or b"\r" in line
            or b"\x00" in line or b"\b" in line or b"\v" in line or b"\f" in line):
        line = b"\t".join([b"\\N" if value is None else _escape(part) for part, value in zip(parts, row)])
    return line + b"\n"


def copy_rows(copy: psycopg.Copy, rows: Iterable[Sequence[Any]]) -> None:
    """``for row in rows: copy.write_row(row)``, with the lines built by ``text_line`` and
    written in large blocks (row order within a COPY does not matter to the staging table)."""
    if copy.connection.info.encoding.lower() not in _UTF8:
        for row in rows:
            copy.write_row(row)
        return
    lines: list[bytes] = []
    size = 0
    for row in rows:
        line = text_line(row)
        if line is None:
            copy.write_row(row)
            continue
        lines.append(line)
        size += len(line)
        if size >= _FLUSH_BYTES:
            copy.write(b"".join(lines))
            lines, size = [], 0
    if lines:
        copy.write(b"".join(lines))

"""The row path's codecs: response bytes → records, a record → `jsonb` text.

Each is a faster spelling of what the standard path did (``requests``' ``.json()``,
``json.dumps``), with the same result; wherever the fast one could differ, the input goes the
old way instead:

- ``response_json``: msgspec parses a UTF-8 body, to the same values as ``json.loads`` (integers
  of any size exact, floats correctly rounded, the last of duplicate keys); a body it refuses (a
  BOM, another charset, invalid UTF-8, `NaN`, a lone surrogate, ``1e400``) is left to
  ``.json()``, which gives the old result or raises the old error. That fallback marks non-finite
  numbers (`NaN`, `Infinity`, ``1e400``) so that ``dumps_json`` writes them as before. Parsing
  runs with the cyclic garbage collector paused: a page of orders is tens of thousands of dicts
  and lists, and in a process as large as a Dagster run every few thousand of them set off a
  collection over the whole heap, which cost more than the parse itself. Parsed JSON holds no
  reference cycles, so nothing is left for the collector that it would have freed. The pause is
  process-wide (``gc.disable``) but lasts only the parse, a few milliseconds per page; a caller
  that had the collector off finds it off afterwards.
- ``dumps_json``: orjson serializes a record; anything orjson would write differently from
  ``json.dumps`` (non-finite floats, marked above; integers beyond 64 bits; datetimes, dataclasses
  and subclasses of builtins, which orjson handles and ``json.dumps`` may refuse) falls back to
  ``json.dumps``. The text may differ in spelling (non-ASCII unescaped, ``1e16`` for ``1e+16``),
  never in the `jsonb` value: PostgreSQL parses both to the same value, and a ``\\u0000`` escape
  is written (and refused by `jsonb`) exactly as before.

- ``response_json(resp, list_key)`` (a page of records under ``list_key``): each record also
  keeps its exact bytes from the body (a ``RawRecord``), and ``raw_json`` hands those to `COPY`
  for the `raw` column instead of serializing the parsed dict again. The `jsonb` value is the same
  but for the spelling of numbers: PostgreSQL keeps a numeric's scale, so ``1.50`` stays ``1.50``
  (``raw ->> 'price'``) where the re-serialized float gave ``1.5``; `jsonb` equality compares
  numbers by value, so a row stored either way is "unchanged" for the same record. A ``\\u0000``
  escape reaches `jsonb` (and is refused) exactly as before; a body msgspec refuses (`NaN`, …) is
  parsed the old way, into plain dicts, serialized by ``dumps_json``.

- ``projected(keys)``: while a sync reads a stream whose table needs only some of a record's
  top-level keys, ``loads_page`` decodes only those (a msgspec struct of them; the other fields
  are skipped by the parser without building a value) — the `raw` column still gets the record's
  whole bytes. A 7 KB Shopify order has ~60 top-level keys of which the orders table reads 15;
  the nested objects it skips (line items, addresses, tax lines) are most of the parse and of the
  objects the garbage collector would have to track. Only records of the page's list are
  projected; the rest of the body is decoded whole.

`COPY` itself stays with psycopg's ``copy.write_row``: its C implementation formats a row faster
than text lines built in Python (measured: 8 vs 12 µs per slim order row, 16 vs 26 µs per full one).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from typing import Any

import msgspec
import orjson
from psycopg.types.json import Jsonb

_UTF8 = frozenset({"utf-8", "utf8", "utf_8"})
_DECODER = msgspec.json.Decoder()
_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
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


class RawRecord(dict):
    """A record parsed from a page, with its exact JSON text from the body (``raw``, a
    ``msgspec.Raw``) for the `raw` column. Changing its top level drops the text (the record then
    goes through ``dumps_json``); nested values must not be changed in place (nothing does)."""

    __slots__ = ("raw",)

    def _changed(self) -> None:
        self.raw = None

    def __setitem__(self, key: Any, value: Any) -> None:
        self._changed()
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._changed()
        super().__delitem__(key)

    def __ior__(self, other: Any) -> RawRecord:
        self._changed()
        return super().__ior__(other)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().update(*args, **kwargs)

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)

    def popitem(self) -> Any:
        self._changed()
        return super().popitem()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self._changed()
        return super().setdefault(key, default)

    def clear(self) -> None:
        self._changed()
        super().clear()

    def __reduce__(self) -> tuple:  # a copy or a pickle is a plain dict: its text is not carried
        return dict, (dict(self),)


def _with_raw(value: Any, raw: msgspec.Raw) -> Any:
    if type(value) is not dict:
        return value
    record = RawRecord(value)
    record.raw = raw
    return record


_PROJECTION: ContextVar[tuple[str, ...] | None] = ContextVar("rowcodec_projection", default=None)


@contextlib.contextmanager
def projected(keys: Collection[str] | None) -> Iterator[None]:
    """Within this block (this thread, this context), pages decode only `keys` of each record
    (None: everything)."""
    token = _PROJECTION.set(tuple(sorted(keys)) if keys is not None else None)
    try:
        yield
    finally:
        _PROJECTION.reset(token)


@functools.lru_cache(maxsize=64)
def _projector(keys: tuple[str, ...]) -> tuple[msgspec.json.Decoder, tuple[tuple[str, str], ...]]:
    """A decoder of the struct holding `keys` (any JSON value each, absent = UNSET)."""
    fields = [(f"f{i}", Any, msgspec.UNSET) for i in range(len(keys))]
    struct = msgspec.defstruct("ProjectedRecord", fields, rename={f"f{i}": key for i, key in enumerate(keys)})
    return msgspec.json.Decoder(struct), tuple((f"f{i}", key) for i, key in enumerate(keys))


def _project(item: msgspec.Raw, keys: tuple[str, ...]) -> Any:
    decoder, names = _projector(keys)
    try:
        value = decoder.decode(item)
    except msgspec.ValidationError:  # not an object: decoded as it is, for the caller to refuse
        return _DECODER.decode(item)
    record = RawRecord({key: got for name, key in names if (got := getattr(value, name)) is not msgspec.UNSET})
    record.raw = item
    return record


def loads_page(content: bytes, list_key: str) -> Any:
    """``loads_bytes(content)``, with each object of the list under ``list_key`` a ``RawRecord``
    carrying its own bytes; raises ``ValueError`` wherever ``loads_bytes`` would (every byte of the
    body is decoded, not only skipped over)."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        body = {}
        for key, raw in _TOP_LEVEL.decode(content).items():
            if key == list_key:
                try:
                    items = _RAW_LIST.decode(raw)
                except msgspec.ValidationError:  # not a list: decoded as it is, for the caller to refuse
                    body[key] = _DECODER.decode(raw)
                else:
                    keys = _PROJECTION.get()
                    body[key] = ([_project(item, keys) for item in items] if keys is not None
                                 else [_with_raw(_DECODER.decode(item), item) for item in items])
            else:
                body[key] = _DECODER.decode(raw)
        return body
    finally:
        if paused:
            gc.enable()


def response_json(resp: Any, list_key: str | None = None) -> Any:
    """``resp.json()``, faster: msgspec for a UTF-8 body it accepts, else ``resp.json()`` itself
    (same value, same ``requests.exceptions.JSONDecodeError``). With ``list_key``, the records
    of a page under that key keep their bytes (``loads_page``)."""
    encoding = resp.encoding
    if encoding is None or encoding.lower() in _UTF8:
        content = resp.content
        if list_key is not None and content[:1] == b"{":
            try:
                return loads_page(content, list_key)
            except ValueError:
                pass
        try:
            return loads_bytes(content)
        except ValueError:
            pass
    return resp.json(parse_float=_parse_float, parse_constant=_parse_constant)


def raw_json(record: Any) -> Any:
    """The `raw` column's value: the record's own bytes from the page (wrapped for psycopg as
    `jsonb` text, never turned into a ``str``), or ``dumps_json(record)``."""
    if type(record) is RawRecord and record.raw is not None:
        return Jsonb(record.raw, bytes)
    return dumps_json(record)


def dumps_json(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"))``, faster; the same `jsonb` value."""
    try:
        return orjson.dumps(value, option=_ORJSON_STRICT).decode()
    except TypeError:  # orjson.JSONEncodeError: beyond 64 bits, NonFinite, a passthrough type
        return json.dumps(value, separators=(",", ":"))

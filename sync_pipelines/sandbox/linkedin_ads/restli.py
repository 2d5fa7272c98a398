"""Rest.li 2.0 query parameters as LinkedIn's versioned APIs read them
(https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/protocol-version,
https://linkedin.github.io/rest.li/spec/protocol#rest.li-protocol-2.0-object-and-listmap-representation).

The raw query string is parsed before any percent-decoding: ``(``, ``)``, ``,`` and ``:`` are the
syntax, so a value holding one of them — a URN's colons — must arrive percent-encoded
(``List(urn%3Ali%3AsponsoredAccount%3A123)``). A literal colon inside ``List()`` or an encoded
parenthesis is a malformed parameter, as on the real API.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import unquote

_DATE = re.compile(r"\(year:(\d{4}),month:(\d{1,2}),day:(\d{1,2})\)")
_RANGE = re.compile(r"\(start:(?P<start>\(year:\d+,month:\d+,day:\d+\))"
                    r"(?:,end:(?P<end>\(year:\d+,month:\d+,day:\d+\)))?\)")


class RestliError(ValueError):
    """A query parameter the server cannot parse (HTTP 400)."""


def raw_params(query_string: bytes) -> dict[str, str]:
    """Parameters as sent (values still percent-encoded); a repeated name keeps the first."""
    params: dict[str, str] = {}
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        params.setdefault(unquote(name), value.replace("+", "%20"))
    return params


def parse_list(raw: str, name: str) -> list[str]:
    """``List(a,b)`` → the decoded items; each item's reserved characters must be encoded."""
    if not (raw.startswith("List(") and raw.endswith(")")):
        raise RestliError(f"{name} must be a Rest.li 2.0 list: List(...)")
    inner = raw[5:-1]
    items = inner.split(",") if inner else []
    for item in items:
        if any(c in item for c in "():"):
            raise RestliError(f"{name}: list items must be URL-encoded (a URN's ':' as %3A)")
    return [unquote(item) for item in items]


def _day(text: str, name: str) -> date:
    match = _DATE.fullmatch(text)
    if not match:
        raise RestliError(f"{name} must look like (year:2025,month:1,day:31)")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as error:
        raise RestliError(f"{name}: {error}") from None


def parse_date_range(raw: str) -> tuple[date, date | None]:
    """``(start:(year:..,month:..,day:..),end:(...))`` → (start, end or None: open range)."""
    match = _RANGE.fullmatch(raw)
    if not match:
        raise RestliError("dateRange must look like (start:(year:2025,month:1,day:1),end:(year:2025,month:1,day:31))")
    start = _day(match.group("start"), "dateRange.start")
    end = _day(match.group("end"), "dateRange.end") if match.group("end") else None
    return start, end


def parse_status_search(raw: str) -> set[str] | None:
    """``(status:(values:List(ACTIVE,PAUSED)))`` → the statuses; None when absent."""
    if not raw:
        return None
    match = re.fullmatch(r"\(status:\(values:(List\([A-Z_,]*\))\)\)", raw)
    if not match:
        raise RestliError("search must look like (status:(values:List(ACTIVE,PAUSED)))")
    return set(parse_list(match.group(1), "search.status.values"))

"""Reading request headers the same way everywhere (the receiver and the providers' signing rules)."""

from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, case-insensitively, stripped; None when absent or empty."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    value = value.strip() if value is not None else None
    return value or None

"""EcoManager shop API v2 emulator: many stores on one port (``/stores/{store}``), orders with
cursor and offset paging, signed webhooks, plus a control plane.

Run it with ``python -m sync_pipelines.sandbox.ecomanager``; `EcoManagerSandbox` (in ``app``) is
the Python API.
"""

from sync_pipelines.sandbox.ecomanager.app import DEFAULT_PORT, TOKEN_PREFIX, EcoManagerSandbox, main
from sync_pipelines.sandbox.ecomanager.data import StoreOrders, ecomanager_time
from sync_pipelines.sandbox.ecomanager.routes import PER_PAGE_MAX, decode_cursor, encode_cursor
from sync_pipelines.sandbox.ecomanager.webhooks import EVENTS, sign

__all__ = ["DEFAULT_PORT", "EVENTS", "PER_PAGE_MAX", "TOKEN_PREFIX", "EcoManagerSandbox", "StoreOrders",
           "decode_cursor", "ecomanager_time", "encode_cursor", "main", "sign"]

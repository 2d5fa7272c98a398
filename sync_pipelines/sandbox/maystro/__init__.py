"""Maystro delivery API emulator: the store orders listing, webhook management and
base64 `OrderStatusChanged` deliveries, plus a control plane.

Run it with ``python -m sync_pipelines.sandbox.maystro``; `MaystroSandbox` (in ``app``) is the Python API.
"""

from sync_pipelines.sandbox.maystro.app import API_KEY_PREFIX, MaystroSandbox, main
from sync_pipelines.sandbox.maystro.data import STATUS_NAMES, StoreData
from sync_pipelines.sandbox.maystro.routes import PAGE_SIZE

__all__ = ["API_KEY_PREFIX", "PAGE_SIZE", "STATUS_NAMES", "MaystroSandbox", "StoreData", "main"]

"""ShipStation API v2 emulator: the read endpoints the sync uses, plus a control plane.

Run it with ``python -m sync_pipelines.sandbox.shipstation`` (or ``.server``); `ShipStationSandbox`
(in ``app``) is the Python API.
"""

from sync_pipelines.sandbox.shipstation.app import API_KEY_PREFIX, ShipStationSandbox, main
from sync_pipelines.sandbox.shipstation.data import StoreData, iso_ms
from sync_pipelines.sandbox.shipstation.routes import LIMIT_DEFAULT, LIMIT_MAX, PRODUCTS_PAGE_SIZE_MAX, error_body

__all__ = ["API_KEY_PREFIX", "LIMIT_DEFAULT", "LIMIT_MAX", "PRODUCTS_PAGE_SIZE_MAX", "ShipStationSandbox",
           "StoreData", "error_body", "iso_ms", "main"]

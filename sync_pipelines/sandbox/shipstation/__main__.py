"""``python -m sync_pipelines.sandbox.shipstation``: serve a ShipStation sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.shipstation.app import main

sys.exit(main())

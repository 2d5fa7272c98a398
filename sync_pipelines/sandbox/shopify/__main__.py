"""``python -m sync_pipelines.sandbox.shopify``: serve a Shopify sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.shopify.app import main

sys.exit(main())

"""``python -m sync_pipelines.sandbox.google_ads``: serve a Google Ads sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.google_ads.app import main

sys.exit(main())

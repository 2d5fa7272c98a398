"""``python -m sync_pipelines.sandbox.tiktok_ads``: serve a TikTok Business API sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.tiktok_ads.app import main

sys.exit(main())

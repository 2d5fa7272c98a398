"""``python -m sync_pipelines.sandbox.meta_ads``: serve a Meta Marketing API sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.meta_ads.app import main

sys.exit(main())

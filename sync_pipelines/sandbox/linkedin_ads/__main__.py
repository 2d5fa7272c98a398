"""``python -m sync_pipelines.sandbox.linkedin_ads``: serve a LinkedIn Marketing API sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.linkedin_ads.app import main

sys.exit(main())

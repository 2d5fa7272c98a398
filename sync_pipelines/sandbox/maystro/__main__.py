"""``python -m sync_pipelines.sandbox.maystro``: serve a Maystro sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.maystro.app import main

sys.exit(main())

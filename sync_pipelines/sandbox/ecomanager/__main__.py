"""``python -m sync_pipelines.sandbox.ecomanager``: serve an EcoManager sandbox until Ctrl-C."""

import sys

from sync_pipelines.sandbox.ecomanager.app import main

sys.exit(main())

"""LinkedIn Marketing API emulator: ad accounts, the adAnalytics finder (Rest.li 2.0 query syntax,
no paging, silently truncated at 15,000 elements), campaigns, versioned headers, OAuth with
non-sliding refresh tokens and revocation, restatement over time, plus a control plane.

Run it with ``python -m sync_pipelines.sandbox.linkedin_ads``; `LinkedInAdsSandbox` (in ``app``)
is the Python API. Independent of the rest of the project.
"""

from sync_pipelines.sandbox.linkedin_ads.app import (
    CLIENT_ID, CLIENT_SECRET, LATEST_VERSION, LinkedInAdsSandbox, account_number, active_versions, main,
)
from sync_pipelines.sandbox.linkedin_ads.oauth import REVOKED_GRANT
from sync_pipelines.sandbox.linkedin_ads.routes import MAX_ELEMENTS

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "LATEST_VERSION", "MAX_ELEMENTS", "REVOKED_GRANT", "LinkedInAdsSandbox",
           "account_number", "active_versions", "main"]

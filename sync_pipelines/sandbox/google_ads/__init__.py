"""Google Ads API (REST) emulator: searchStream with GAQL, OAuth tokens, quota errors, restatement.

Contract: the Google Ads API's REST interface as documented on developers.google.com, with the
behaviours that trip up sync clients reproduced on purpose, each noted where it is implemented:

- ``searchStream`` answers a JSON array of batches of at most 10,000 rows, int64 as strings and
  doubles as numbers, and its errors as a one-element array (``routes``, ``data``);
- GAQL is parsed and validated, a bad query is a ``GoogleAdsFailure`` with a ``queryError``
  (``gaql``, ``failures``);
- a customer behind a manager needs ``login-customer-id``; quota errors carry the wait in
  ``quotaErrorDetails.retryDelay``, not in a header (``routes``);
- access tokens expire and grants can be revoked (``oauth``); past days are restated and
  campaign-days vanish (``mutations``); days are the customer's own, in its time zone (``data``).

The API lives under ``/{version}/customers/{id}/googleAds:searchStream`` and the token endpoint
at ``/token`` (standing in for ``https://googleads.googleapis.com`` and
``https://oauth2.googleapis.com/token``). Run it with ``python -m sync_pipelines.sandbox.google_ads``;
`GoogleAdsSandbox` (in ``app``) is the Python API. Independent of the rest of the project.
"""

from sync_pipelines.sandbox.google_ads.app import CLIENT_ID, CLIENT_SECRET, DEVELOPER_TOKEN, GoogleAdsSandbox, main
from sync_pipelines.sandbox.google_ads.data import CustomerData, normalise_customer_id
from sync_pipelines.sandbox.google_ads.gaql import GaqlError
from sync_pipelines.sandbox.google_ads.routes import MAX_BATCH_ROWS, SUPPORTED_API_VERSIONS

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "DEVELOPER_TOKEN", "MAX_BATCH_ROWS", "SUPPORTED_API_VERSIONS",
           "CustomerData", "GaqlError", "GoogleAdsSandbox", "main", "normalise_customer_id"]

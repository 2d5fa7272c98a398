"""The Business API routes a report sync uses, under ``/open_api/v1.3``: the synchronous report,
advertiser info and the token refresh.

TikTok's order of checks, every answer HTTP 200 with a ``code``: access token (``Access-Token``
header: 40104 missing, 40105 invalid or revoked, 40102 expired) → rate limit (40100) → injected
faults → parameters (40002) → the token's right to the advertiser (40001) → the data. References:
"Authentication" (https://business-api.tiktok.com/portal/docs?id=1738373164380162), "Advertiser
info" (https://business-api.tiktok.com/portal/docs?id=1739593083610113), ``reports`` and
``oauth`` for the rest. An injected 500/503 is a real HTTP error (an outage in front of the API).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.tiktok_ads import reports
from sync_pipelines.sandbox.tiktok_ads.errors import TikTokError, ok, param_error
from sync_pipelines.sandbox.tiktok_ads.oauth import Token

API = "/open_api/v1.3"
MEDIA_TYPE = "application/json"
_GARBAGE = b"<html><body>502 Bad Gateway</body></html>\x00{\"code\": 0, \"data\": {"
ADVERTISER_FIELDS = ("advertiser_id", "name", "currency", "timezone", "display_timezone", "status", "role")


class TikTokAdsRoutes:
    """The API routes of `TikTokAdsSandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        return [
            Route(f"{API}/report/integrated/get/", self._report, methods=["GET"]),
            Route(f"{API}/advertiser/info/", self._advertiser_info, methods=["GET"]),
            Route(f"{API}/oauth2/refresh_token/", self._refresh, methods=["POST"]),
        ]

    # ------------------------------------------------------------ plumbing
    def _reply(self, payload: Any, fault: str | None = None) -> Response:
        return Response(self.faults.corrupt(dumps(payload), fault, _GARBAGE), 200, media_type=MEDIA_TYPE)

    async def _serve(self, request: Request, advertiser_id: str | None,
                     work: Callable[[dict[str, str], Token], Any], kind: str) -> Response:
        await self.faults.delay()
        params, fault = dict(request.query_params), None
        try:
            token = self.tokens.check(request.headers.get("access-token"), self.now(), None)
            self._throttle(advertiser_id)
            fault = self.faults.decide()
            if fault == "429":
                raise TikTokError(40100)
            if fault in ("500", "503"):
                self._requests.record(advertiser_id, int(fault))
                return Response(b"<html>Service Unavailable</html>", int(fault), media_type="text/html")
            payload = work(params, token)
        except TikTokError as error:
            self._requests.record(advertiser_id, 200, rate_limited=error.code in (40100, 40132, 61000))
            self._count(f"error_{error.code}", advertiser_id)
            return self._reply(error.body())
        self._requests.record(advertiser_id, 200)
        self._count(kind, advertiser_id)
        return self._reply(ok(payload), fault)

    def _throttle(self, advertiser_id: str | None) -> None:
        """A queued error for the advertiser (`fail_next`), then the per-second limit (40100)."""
        now = self.now()
        with self._lock:
            queue = self._queued.get(advertiser_id or "")
            if queue:
                head = queue[0]
                head[1] -= 1
                if head[1] <= 0:
                    queue.popleft()
                raise TikTokError(head[0], head[2])
            limit = self.requests_per_second
            if limit:
                recent = self._recent.setdefault(advertiser_id or "", deque())
                while recent and recent[0] <= now - 1.0:
                    recent.popleft()
                if len(recent) >= limit:
                    raise TikTokError(40100)
                recent.append(now)

    def _allowed(self, token: Token, advertiser_id: str) -> Any:
        self.tokens.check(token.value, self.now(), advertiser_id)
        with self._lock:
            advertiser = self._accounts.get(advertiser_id)
        if advertiser is None:
            raise TikTokError(40001, advertiser_id=advertiser_id)
        return advertiser

    # -------------------------------------------------------------- routes
    async def _report(self, request: Request) -> Response:
        advertiser_id = request.query_params.get("advertiser_id")

        def work(params: dict[str, str], token: Token) -> dict[str, Any]:
            query = reports.parse(params)
            advertiser = self._allowed(token, query.advertiser_id)
            with self._lock:
                rows = reports.compute_rows(advertiser, query, advertiser.today(self.now()))
            return reports.page(rows, query)

        return await self._serve(request, advertiser_id, work, "report")

    async def _advertiser_info(self, request: Request) -> Response:
        def work(params: dict[str, str], token: Token) -> dict[str, Any]:
            ids = reports._json_list(params, "advertiser_ids")
            if not ids:
                raise param_error("advertiser_ids: required, a JSON-encoded list of advertiser ids")
            fields = reports._json_list(params, "fields") or list(ADVERTISER_FIELDS)
            unknown = [f for f in fields if f not in ADVERTISER_FIELDS]
            if unknown:
                raise param_error(f"fields: unknown field {unknown[0]!r}")
            found = [self._allowed(token, str(a)).info() for a in ids]
            return {"list": [{f: info[f] for f in fields} for info in found]}

        ids = request.query_params.get("advertiser_ids", "")
        try:
            first = json.loads(ids)[0] if ids else None
        except (ValueError, IndexError, KeyError, TypeError):
            first = None
        return await self._serve(request, str(first) if first is not None else None, work, "advertiser_info")

    async def _refresh(self, request: Request) -> Response:
        await self.faults.delay()
        raw = await request.body()
        self._requests.record(None, 200)
        try:
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                raise param_error("The request body must be JSON.") from None
            payload = self.tokens.refresh(body, self.now(), app_id=self.app_id, secret=self.app_secret)
        except TikTokError as error:
            return self._reply(error.body())
        return self._reply(ok(payload))

"""The Graph API routes the Marketing API sync uses: ``/{version}/act_<id>``, its ``/insights``
(sync GET, async POST), ``/{version}/<report_run_id>`` and its ``/insights``, and the token
exchange ``/oauth/access_token`` (versioned or not).

Meta's order of checks: API version → access token (104/190) → the object and the token's right
to read it (100/33) → Business Use Case throttling (usage headers on every answer) → injected
faults → the handler. Errors are Graph error bodies (``errors``), HTTP 400 unless said otherwise.
References: https://developers.facebook.com/docs/graph-api/overview (versioned paths, tokens as
``access_token`` or ``Authorization: Bearer``), ``reports`` and ``throttle`` for the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.meta_ads.data import AccountData
from sync_pipelines.sandbox.meta_ads.errors import (
    GraphError, fbtrace_id, invalid_parameter, server_error, unsupported_get,
)
from sync_pipelines.sandbox.meta_ads.reports import (
    InsightsQuery, JobRule, ReportRun, compute_rows, not_ready, page, parse_limit, parse_query,
)

MEDIA_TYPE = "application/json; charset=UTF-8"
_VERSION = re.compile(r"v\d+\.\d+")
_ACCOUNT_PATH = re.compile(r"act_(\d+)(/insights)?/?")
_RUN_PATH = re.compile(r"(\d+)(/insights)?/?")
_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff{\"data\": [,"
_SYNC_TOO_BIG = "Please reduce the amount of data you're asking for, then retry your request"


class _GraphVersion(Convertor):
    """A path segment like ``v23.0``, so ``/_sandbox/...`` never reaches the Graph routes."""

    regex = r"v\d+\.\d+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", _GraphVersion())


class MetaAdsRoutes:
    """The Graph routes of `MetaAdsSandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        return [
            Route("/oauth/access_token", self._oauth, methods=["GET", "POST"]),
            Route("/{version:graph_version}/oauth/access_token", self._oauth, methods=["GET", "POST"]),
            Route("/{version:graph_version}/{rest:path}", self._graph, methods=["GET", "POST"]),
        ]

    # ------------------------------------------------------------ plumbing
    async def _params(self, request: Request) -> dict[str, str]:
        """Query parameters, overlaid by a POST's form or JSON body (the SDKs send forms)."""
        params = dict(request.query_params)
        if request.method == "POST":
            raw = await request.body()
            if request.headers.get("content-type", "").startswith("application/json") and raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    raise invalid_parameter("The request body must be a JSON object")
                params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
            else:
                params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    @staticmethod
    def _token_of(request: Request, params: dict[str, str]) -> str | None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            return value.strip()
        return params.get("access_token")

    def _reply(self, payload: Any, status: int, headers: dict[str, str], fault: str | None = None) -> Response:
        body = self.faults.corrupt(dumps(payload), fault, _GARBAGE_BODY)
        return Response(body, status, headers=headers, media_type=MEDIA_TYPE)

    # --------------------------------------------------------------- oauth
    async def _oauth(self, request: Request) -> Response:
        await self.faults.delay()
        headers = {"x-fb-trace-id": fbtrace_id()}
        try:
            version = request.path_params.get("version")
            if version is not None:
                self._check_version(version)
            params = await self._params(request)
            payload = self.tokens.exchange(params, self.now(), app_id=self.app_id, app_secret=self.app_secret,
                                           expires_in=self.exchange_expires_in)
        except GraphError as exc:
            self._requests.record(None, exc.status)
            return self._reply(exc.body(), exc.status, headers)
        self._requests.record(None, 200)
        return self._reply(payload, 200, headers)

    def _check_version(self, version: str) -> None:
        if not _VERSION.fullmatch(version) or version not in self.api_versions:
            raise GraphError(2635, f"(#2635) You are calling a deprecated version of the Ads API. Please update "
                                   f"to the latest version: {self.api_versions[-1]}.")

    # --------------------------------------------------------------- graph
    async def _graph(self, request: Request) -> Response:
        await self.faults.delay()
        version, rest = request.path_params["version"], request.path_params["rest"]
        headers = {"facebook-api-version": version, "x-fb-trace-id": fbtrace_id(), "x-fb-rev": "1"}
        account_id: str | None = None
        fault: str | None = None
        throttled = False
        try:
            self._check_version(version)
            params = await self._params(request)
            token = self.tokens.check(self._token_of(request, params), self.now())
            account_id, run, edge = self._target(rest)
            if not token.may_read(account_id):
                raise unsupported_get(f"act_{account_id}" if run is None else run.id)
            usage, throttle_error = self.throttle.hit(account_id)
            headers.update(usage)
            if throttle_error is not None:
                throttled = True
                raise throttle_error
            fault = self.faults.decide()
            if fault == "429":
                raise GraphError(4, "(#4) Application request limit reached", subcode=1504022, status=429,
                                 transient=True, headers={"Retry-After": str(self.faults.retry_after_seconds)})
            if fault in ("500", "503"):
                raise server_error(int(fault))
            status, payload = self._dispatch(request, params, account_id, run, edge)
        except GraphError as exc:
            headers.update(exc.headers)
            self._requests.record(account_id, exc.status, rate_limited=throttled, fault_429=fault == "429")
            return self._reply(exc.body(), exc.status, headers)
        self._requests.record(account_id, status)
        return self._reply(payload, status, headers, fault)

    def _target(self, rest: str) -> tuple[str, ReportRun | None, bool]:
        """(ad account id, report run or None, whether the path is the ``/insights`` edge)."""
        match = _ACCOUNT_PATH.fullmatch(rest)
        if match:
            with self._lock:
                if match.group(1) not in self._accounts:
                    raise unsupported_get(f"act_{match.group(1)}")
            return match.group(1), None, bool(match.group(2))
        match = _RUN_PATH.fullmatch(rest)
        if match:
            with self._lock:
                run = self._runs.get(match.group(1))
            if run is not None:
                return run.account_id, run, bool(match.group(2))
        raise unsupported_get(rest.split("/")[0])

    def _dispatch(self, request: Request, params: dict[str, str], account_id: str, run: ReportRun | None,
                  edge: bool) -> tuple[int, Any]:
        post = request.method == "POST"
        if run is None and not edge:
            if post:
                raise invalid_parameter("Unsupported post request (the sandbox does not update ad accounts)")
            self._count("account", account_id)
            return 200, self._account_fields(account_id, params)
        if run is None:
            return self._create_run(account_id, params) if post else self._sync_insights(request, params, account_id)
        if post:
            raise invalid_parameter("Unsupported post request on a report run")
        return self._run_insights(request, params, run) if edge else self._poll_run(run)

    def _account_fields(self, account_id: str, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            info = self._accounts[account_id].info(self.now())
        wanted = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
        unknown = [f for f in wanted if f not in info]
        if unknown:
            raise invalid_parameter(f"Tried accessing nonexisting field ({unknown[0]}) on node type (AdAccount)")
        return {**{f: info[f] for f in wanted}, "id": info["id"]}

    def _query(self, account_id: str, params: dict[str, str]) -> tuple[AccountData, InsightsQuery, Any]:
        with self._lock:
            account = self._accounts[account_id]
        today = account.today(self.now())
        return account, parse_query(params, today), today

    def _sync_insights(self, request: Request, params: dict[str, str], account_id: str) -> tuple[int, Any]:
        account, query, today = self._query(account_id, params)
        parse_limit(params)
        if self.sync_max_days is not None and query.days > self.sync_max_days:
            raise GraphError(1, _SYNC_TOO_BIG, status=500, error_type="OAuthException", transient=False)
        self._count("insights_sync", account_id)
        with self._lock:
            rows = compute_rows(account, query, today)
        return 200, self._paged(request, params, rows, query.fingerprint())

    def _create_run(self, account_id: str, params: dict[str, str]) -> tuple[int, Any]:
        account, query, _ = self._query(account_id, params)
        with self._lock:
            rule = next((r for r in self._job_rules.get(account_id, []) if r.matches(query.days)), None)
            if rule is not None and rule.count is not None:
                rule.count -= 1
            rule = rule or JobRule("complete", self.job_polls)
            self._next_run += 1
            run = ReportRun(id=str(self._next_run), account_id=account.account_id, query=query, mode=rule.mode,
                            polls_needed=rule.polls, created_at=self.now())
            self._runs[run.id] = run
        self._count("report_runs", account_id)
        return 200, {"report_run_id": run.id}

    def _poll_run(self, run: ReportRun) -> tuple[int, Any]:
        self._count("report_polls", run.account_id)
        with self._lock:
            status, percent = run.poll()
            if status == "Job Completed" and run.rows is None:
                account = self._accounts[run.account_id]
                now = self.now()
                run.rows, run.completed_at = compute_rows(account, run.query, account.today(now)), now
            return 200, run.status(status, percent)

    def _run_insights(self, request: Request, params: dict[str, str], run: ReportRun) -> tuple[int, Any]:
        self._count("report_insights", run.account_id)
        with self._lock:
            rows = run.rows
        if rows is None:
            raise not_ready(run.id)
        return 200, self._paged(request, params, rows, run.query.fingerprint())

    @staticmethod
    def _paged(request: Request, params: dict[str, str], rows: list[dict[str, Any]],
               fingerprint: str) -> dict[str, Any]:
        """``{"data", "paging": {"cursors": {"before", "after"}, "next"?, "previous"?}}``; ``next``
        is the same request with the ``after`` cursor, on the same origin (only while rows remain)."""
        part = page(rows, params, fingerprint)
        body: dict[str, Any] = {"data": part.rows}
        if part.after is None:
            return body
        paging: dict[str, Any] = {"cursors": {"before": part.before, "after": part.after}}
        query = {k: v for k, v in request.query_params.items() if k not in ("after", "before")}
        if part.has_next:
            paging["next"] = str(request.url.replace(query=urlencode({**query, "after": part.after})))
        if part.has_previous:
            paging["previous"] = str(request.url.replace(query=urlencode({**query, "before": part.before})))
        body["paging"] = paging
        return body

"""GET /metrics (Prometheus text format) and the engine's own request latency.

`install(app)` adds, per app (each app has its own registry, so several apps in one process,
as in the tests, do not mix their numbers):
- the route GET /metrics, behind a bearer token as Prometheus's `authorization` scrape setting
  sends it. Which tokens may scrape is configurable with FERRY_METRICS_TOKENS: unset or empty =
  any valid token (readonly or admin); a comma-separated list of token names = only those
  (a dedicated metrics token: `ferry token create --role readonly --name prometheus`, then
  FERRY_METRICS_TOKENS=prometheus). Refusals: 401 (missing/unknown/revoked), 403 (not listed).
- a middleware timing every request: ferry_engine_request_duration_seconds{method, route,
  status}, `route` being the route's template (/api/migrations/{migration_id}), never the raw
  path, so the number of series stays bounded ("unmatched" for 404s without a route).
The request histogram is the one metric kept in memory: it is about this process, not the
installation.
"""
from __future__ import annotations

import os
import time

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from ferry.engine.api.auth import require_token
from ferry.engine.api.errors import error_body
from ferry.engine.metrics_collector import EngineCollector
from ferry.engine.services.tokens import TokenRecord

TOKENS_ENV = "FERRY_METRICS_TOKENS"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def allowed_token_names(value: str | None) -> frozenset[str] | None:
    """The token names FERRY_METRICS_TOKENS allows to scrape; None = any valid token."""
    names = frozenset(n.strip() for n in (value or "").split(",") if n.strip())
    return names or None


def route_template(scope: dict) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestLatency:
    """ASGI middleware observing each HTTP request's duration into `histogram`."""

    def __init__(self, app, histogram: Histogram):
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.histogram.labels(scope.get("method", ""), route_template(scope),
                                  str(status["code"])).observe(time.perf_counter() - t0)


def install(app: FastAPI) -> CollectorRegistry:
    """Add GET /metrics and the latency middleware to `app`; returns the app's registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(app.state.db))
    latency = Histogram("ferry_engine_request_duration_seconds", "The engine's HTTP request latency, by route "
                        "template, method and status code.", ("method", "route", "status"),
                        buckets=LATENCY_BUCKETS_S, registry=registry)
    app.state.metrics_registry = registry
    allowed = allowed_token_names(os.environ.get(TOKENS_ENV))
    app.add_middleware(RequestLatency, histogram=latency)

    def scraper(token: TokenRecord = Depends(require_token)) -> TokenRecord:
        if allowed is not None and token.name not in allowed:
            raise HTTPException(403, error_body(f"token {token.name!r} may not read /metrics (allowed: "
                                                f"{', '.join(sorted(allowed))}; see {TOKENS_ENV})",
                                                "Authorization", "not a metrics token")["detail"])
        return token

    @app.get("/metrics", tags=["engine"], response_class=Response,
             responses={200: {"description": "Prometheus text exposition format",
                              "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
    def metrics(request: Request, _: TokenRecord = Depends(scraper)) -> Response:
        """Prometheus metrics (text exposition format), built from the database at each scrape."""
        return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return registry

"""The HTTP client for the engine's REST API (the CLI's and the benchmarks').

`EngineClient()` talks to FERRY_ENGINE_URL (default http://127.0.0.1:8090) with the bearer
token FERRY_ENGINE_TOKEN; either may instead come from the config file (ferry.client.config:
~/.config/ferry/config.toml or FERRY_CONFIG). Every HTTP error becomes the matching ferry error with the
engine's own message (422/400 -> InvalidInput naming the field, 404 -> NotFound, 409 ->
Conflict, anything else -> OperationFailed), so commands never show a traceback.
"""
from __future__ import annotations

import os
from typing import Any

import httpx

from ferry.common.errors import Conflict, InvalidInput, NotFound, OperationFailed

DEFAULT_ENGINE_URL = "http://127.0.0.1:8090"


class EngineClient:
    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        from ferry.client.config import resolve_engine

        settings = resolve_engine(url, token)
        self.url = (settings.url or DEFAULT_ENGINE_URL).rstrip("/")
        token = settings.token
        self.config_source = settings.source
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if not self.url.startswith(("http://", "https://")):
            raise InvalidInput("engine URL", f"{self.url!r} is not an http:// or https:// URL "
                                             "(check FERRY_ENGINE_URL)")
        verify: Any = True  # an https:// engine: checked against the system's CAs, or the configured one
        if settings.ca:
            import ssl

            try:
                verify = ssl.create_default_context(cafile=settings.ca)
            except (OSError, ssl.SSLError) as exc:
                raise InvalidInput("engine CA", f"{settings.ca}: cannot be loaded ({exc}); check FERRY_ENGINE_CA "
                                                "or [engine] ca in the config file") from None
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport,
                                  verify=verify)

    @classmethod
    def from_env(cls) -> EngineClient:
        return cls()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ verbs

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, json=body, params=params or None)
        except httpx.TransportError as exc:
            raise OperationFailed(f"cannot reach the Ferry engine at {self.url} ({exc}); start it with "
                                  "`ferry engine run` or point FERRY_ENGINE_URL at it") from None
        if response.status_code == 204:
            return None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise OperationFailed(f"the engine at {self.url} answered {method} {path} with "
                                      "something that is not JSON") from None
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: httpx.Response) -> Exception:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        status = response.status_code
        if isinstance(detail, dict):
            message = detail.get("message") or detail.get("reason") or f"HTTP {status}"
            if status in (401, 403):
                return self._refused(method, path, status, message)
            if status in (400, 422):
                return InvalidInput(detail.get("field") or "request", detail.get("reason") or message)
            if status == 404 and detail.get("kind"):
                return NotFound(detail["kind"], detail.get("name", "?"))
            if status == 409:
                return Conflict(message)
            return OperationFailed(f"engine: {message} (HTTP {status})")
        text = detail if isinstance(detail, str) else response.text[:200]
        if status == 404:
            return OperationFailed(f"the engine at {self.url} has no {method} {path} (HTTP 404: {text}); "
                                   "is FERRY_ENGINE_URL a Ferry engine of this version?")
        if status in (401, 403):
            return OperationFailed(f"the engine refused {method} {path} (HTTP {status}: {text}); "
                                   "check FERRY_ENGINE_TOKEN")
        return OperationFailed(f"engine error on {method} {path}: HTTP {status}: {text}")

    def _refused(self, method: str, path: str, status: int, message: str) -> Exception:
        where = "FERRY_ENGINE_TOKEN" if os.environ.get("FERRY_ENGINE_TOKEN") else (
            f"the token in {self.config_source}" if self.config_source else
            "FERRY_ENGINE_TOKEN (or [engine] token in ~/.config/ferry/config.toml)")
        if status == 401:
            return OperationFailed(f"the engine refused {method} {path}: {message} — check {where}")
        return OperationFailed(f"the engine refused {method} {path}: {message}")

"""Ferry errors and request validation failures as HTTP responses.

Every client error has the same shape, so the CLI and scripts can show it as is:
{"detail": {"field": ..., "reason": ..., "message": ...}} (field is null when no single field
is at fault). InvalidInput and body validation -> 422, NotFound -> 404, Conflict -> 409,
OperationFailed -> 502; Starlette's own refusals (unknown route 404, method 405, unparsable
body 400) and the body guard's (ferry.engine.api.body_guard: too large 413, too deep 422) get
the same shape. Bad input never becomes a 500: the services check every value first, and as a
last line the errors bad input can cause deep down (an integer SQLite cannot hold, text UTF-8
cannot encode, a value a parser refuses) are answered 422 too, and logged with their traceback
so the missing check is found.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ferry.common.errors import Conflict, FerryError, InvalidInput, NotFound, OperationFailed

log = logging.getLogger("ferry.engine.api")

# What bad input can raise below the checks: SQLite's OverflowError for integers past 64 bits,
# UnicodeError for lone surrogates, ValueError from parsers (urlsplit's "Invalid IPv6 URL").
BAD_INPUT_ERRORS = (OverflowError, UnicodeError, ValueError, RecursionError)


def error_body(message: str, field: str | None = None, reason: str | None = None, **extra) -> dict:
    return {"detail": {"field": field, "reason": reason or message, "message": message, **extra}}


class SafeJSONResponse(JSONResponse):
    """A JSON response that can always be sent: text that UTF-8 cannot encode (a lone
    surrogate echoed from a request) is sent escaped instead of failing."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def json_response(content: Any, status_code: int, headers: dict | None = None) -> JSONResponse:
    return SafeJSONResponse(content, status_code=status_code, headers=headers)


def loc_to_field(loc: tuple | list) -> str:
    """('body', 'overrides', 'parallel', 'connections') -> 'overrides.parallel.connections';
    list indices become [i]. The 'body'/'query'/'path' prefix is dropped; so are the type tags
    pydantic adds for union members (e.g. 'ParallelBody', 'str')."""
    parts: list[str] = []
    items = list(loc)
    if items and items[0] in ("body", "query", "path"):
        items = items[1:]
    for item in items:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            else:
                parts.append(f"[{item}]")
        elif isinstance(item, str) and (item[:1].isupper() or item in ("str", "int", "bool", "float")
                                        or "[" in item or item.startswith("function-")):
            continue
        else:
            parts.append(str(item))
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    from ferry.engine.api.body_guard import BodyGuard

    app.add_middleware(BodyGuard)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if isinstance(exc.detail, dict) and {"field", "reason", "message"} <= set(exc.detail):
            return json_response({"detail": exc.detail}, exc.status_code, headers)
        message = str(exc.detail)
        field = "body" if "parsing the body" in message else None
        return json_response(error_body(message, field), exc.status_code, headers)

    def _bad_input(request: Request, exc: BaseException) -> JSONResponse:
        log.warning("bad input reached %s %s unchecked: %r", request.method, request.url.path, exc,
                    exc_info=exc)
        reason = (f"holds a value the engine cannot store or read ({type(exc).__name__}: "
                  f"{str(exc)[:200]})")
        return json_response(error_body(f"request: {reason}", "request", reason), 422)

    for error in BAD_INPUT_ERRORS:
        app.add_exception_handler(error, _bad_input)

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        if isinstance(exc, IntegrityError):
            return await _integrity(request, exc)
        if isinstance(exc.orig, BAD_INPUT_ERRORS):
            return _bad_input(request, exc.orig)
        raise exc

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return json_response(error_body(str(exc), exc.field, exc.reason), 422)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return json_response(error_body(str(exc), kind=exc.kind, name=exc.name), 404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return json_response(error_body(str(exc)), 409)

    @app.exception_handler(OperationFailed)
    async def _failed(_: Request, exc: OperationFailed) -> JSONResponse:
        return json_response(error_body(str(exc)), 502)

    @app.exception_handler(FerryError)
    async def _ferry(_: Request, exc: FerryError) -> JSONResponse:
        return json_response(error_body(str(exc)), 400)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", exc.orig)
        return json_response(error_body("the change conflicts with existing data (it was changed "
                                       "at the same time?); try again"), 409)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            field = loc_to_field(err.get("loc", ()))
            reason = err.get("msg", "invalid")
            if err.get("type") == "extra_forbidden":
                reason = "unknown field"
            elif err.get("type") == "json_invalid":
                field, reason = "body", f"is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
            errors.append({"field": field, "reason": reason})
        # Union members each report their own failure; show the first field once.
        first = errors[0] if errors else {"field": "body", "reason": "invalid request"}
        body = error_body(f"{first['field']}: {first['reason']}", first["field"], first["reason"],
                          errors=errors)
        return json_response(body, 422)

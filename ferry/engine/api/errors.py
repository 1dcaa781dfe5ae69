"""Ferry errors and request validation failures as HTTP responses.

Every client error has the same shape, so the CLI and scripts can show it as is:
{"detail": {"field": ..., "reason": ..., "message": ...}} (field is null when no single field
is at fault). InvalidInput and body validation -> 422, NotFound -> 404, Conflict -> 409,
OperationFailed -> 502. Bad input never becomes a 500.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from ferry.common.errors import Conflict, FerryError, InvalidInput, NotFound, OperationFailed

log = logging.getLogger("ferry.engine.api")


def error_body(message: str, field: str | None = None, reason: str | None = None, **extra) -> dict:
    return {"detail": {"field": field, "reason": reason or message, "message": message, **extra}}


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
    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse(error_body(str(exc), exc.field, exc.reason), status_code=422)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(error_body(str(exc), kind=exc.kind, name=exc.name), status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=409)

    @app.exception_handler(OperationFailed)
    async def _failed(_: Request, exc: OperationFailed) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=502)

    @app.exception_handler(FerryError)
    async def _ferry(_: Request, exc: FerryError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=400)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", exc.orig)
        return JSONResponse(error_body("the change conflicts with existing data (it was changed "
                                       "at the same time?); try again"), status_code=409)

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
        return JSONResponse(body, status_code=422)

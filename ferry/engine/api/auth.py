"""Bearer-token authentication and roles for every /api route except GET /api/health.

`create_app` adds `require_token` to each router in ROUTERS, so a router added later is
protected without doing anything. Refusals use the API's error shape:
401 (no token, malformed, unknown, revoked) with WWW-Authenticate: Bearer, 403 (a readonly
token asking to change something; the plan, a POST that only reads, is open to it:
ferry.engine.tokens.READ_POSTS). Tokens are made with `ferry token create`.
"""
from __future__ import annotations

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferry.engine import tokens
from ferry.engine.api.deps import DatabaseDep
from ferry.engine.api.errors import error_body
from ferry.engine.db.repos.tokens import TokenRecord

bearer = HTTPBearer(auto_error=False, scheme_name="token",
                    description="An API token from `ferry token create --role admin|readonly`.")

HOW = "send 'Authorization: Bearer <token>' (create one on the engine host with `ferry token create`)"


def _refuse(status: int, message: str, reason: str) -> HTTPException:
    headers = {"WWW-Authenticate": 'Bearer realm="ferry"'} if status == 401 else None
    return HTTPException(status_code=status, detail=error_body(message, "Authorization", reason)["detail"],
                         headers=headers)


def require_token(request: Request, db: DatabaseDep,
                  credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> TokenRecord:
    """The caller's token record; refuses missing/unknown/revoked tokens and readonly writes."""
    if credentials is None:
        header = request.headers.get("authorization")
        if header:
            raise _refuse(401, "authentication required: the Authorization header is not "
                               "'Bearer <token>'", "not a bearer token")
        raise _refuse(401, f"authentication required: {HOW}", "missing")
    with db.reads() as store:   # one statement: no transaction needed (Database.reads)
        record = store.tokens.check(credentials.credentials)
    if record is None:
        raise _refuse(401, "invalid token: not a token of this engine", "unknown token")
    if record.revoked_at is not None:
        raise _refuse(401, f"token {record.name!r} was revoked at {record.revoked_at.isoformat()}; "
                           "ask an admin for a new one", "revoked")
    route = getattr(request.scope.get("route"), "path", None)   # the template, never the raw path
    if not tokens.may(record.role, request.method, route):
        raise _refuse(403, f"token {record.name!r} is {record.role}: {request.method} "
                           f"{request.url.path} needs an admin token", "read-only token")
    request.state.token = record
    return record

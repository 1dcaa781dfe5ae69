"""A guard in front of every route: request bodies the engine cannot handle are refused before
any route parses them, with the API's error shape naming the field.

- larger than MAX_BODY_BYTES (1 MiB; the largest real body, a policy, is a few KiB): 413;
- JSON nested deeper than MAX_DEPTH (32; Ferry's deepest body has 4 levels): 422 "body",
  because Python's JSON parser otherwise gives up with a RecursionError, which FastAPI
  answers with a bare 400 "There was an error parsing the body";
- a JSON key or string holding a lone surrogate ("\\ud800", which JSON allows and UTF-8 cannot
  encode) or a NUL, or a string longer than MAX_STRING (64 Ki characters): 422 naming it by
  its JSON path, because the database cannot store such text and give it back (and an error
  echoing a surrogate could not be sent either). Fields get tighter bounds from their models.

Pure ASGI (the body is read once and handed on). Authentication still comes first: a refused
body is not answered here but marked in the request's state and replaced by an empty one, and
`refuse_marked_body`, a dependency every router runs after the bearer-token check, answers it;
so a client without a valid token gets its 401/403, never a hint about the body.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferry.engine.validation import show, text_problem

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_STRING = 65536
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def json_depth(body: bytes) -> int:
    """The deepest nesting of [ and { in `body` outside strings (no parsing, so no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field, reason) of the first key or string in a parsed JSON value that holds a lone
    surrogate or a NUL, or is longer than MAX_STRING."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item) or (f"must be at most {MAX_STRING} characters"
                                             if len(item) > MAX_STRING else None)
            if problem:
                return where or "body", problem
        elif isinstance(item, dict):
            for key, sub in item.items():
                problem = text_problem(key) or ("is too long" if len(key) > 255 else None)
                if problem:
                    return (where or "body"), f"key {show(key)}: {problem}"
                stack.append((sub, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))
    return None


def body_problem(body: bytes) -> tuple[int, str, str] | None:
    """(status, field, reason) when the guard refuses `body`, else None."""
    if len(body) > MAX_BODY_BYTES:
        return 413, "body", f"must be at most {MAX_BODY_BYTES} bytes"
    if json_depth(body) > MAX_DEPTH:
        return 422, "body", f"JSON is nested more than {MAX_DEPTH} levels deep"
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's own parsing says so, with the error shape
    found = unstorable_text(parsed)
    return None if found is None else (422, *found)


class BodyGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY_BYTES:
                chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks) if size <= MAX_BODY_BYTES else b"x" * (MAX_BODY_BYTES + 1)
        problem = body_problem(body) if body else None
        if problem is not None:
            scope.setdefault("state", {})[PROBLEM_KEY] = problem
            chunks = []
        await self.app(scope, _replay(chunks, None, receive), send)


PROBLEM_KEY = "ferry_body_problem"


def refuse_marked_body(request: Request) -> None:
    """The guard's refusal, after authentication (a router dependency, see create_app)."""
    problem = request.scope.get("state", {}).get(PROBLEM_KEY)
    if problem is not None:
        from ferry.engine.api.errors import error_body

        status, field, reason = problem
        raise HTTPException(status, detail=error_body(f"{field}: {reason}", field, reason)["detail"])


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A receive() that hands the app the body already read, then the live channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if pending is not None:
                return pending
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await receive()

    return replay

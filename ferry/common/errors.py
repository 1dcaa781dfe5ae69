"""Errors every part of Ferry raises for bad input or failed operations.

The CLI turns them into `error: ...` and the exit code below, the REST API into a 4xx/5xx with
the same message, the agent into a JSON-RPC error. Messages name the field and the reason.
"""
from __future__ import annotations


class FerryError(Exception):
    """Base of Ferry's own errors: a message meant for the user, and a CLI exit code."""

    exit_code = 1


class InvalidInput(FerryError):
    """Bad input from a user: names the field and says why (CLI exit 2, HTTP 422/400)."""

    exit_code = 2

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotFound(FerryError):
    """A named object (VM, host, cluster, policy) does not exist (CLI exit 2, HTTP 404)."""

    exit_code = 2

    def __init__(self, kind: str, name: str):
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found")


class Conflict(FerryError):
    """The request is valid but clashes with the current state (CLI exit 2, HTTP 409)."""

    exit_code = 2


class OperationFailed(FerryError):
    """An operation was attempted and failed (CLI exit 1, HTTP 502/500 with the reason)."""

    exit_code = 1

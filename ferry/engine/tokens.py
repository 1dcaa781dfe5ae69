"""API tokens and roles (pure): what a token looks like, how it is stored, what a role may do.

A token is "ferry_" + 43 URL-safe characters (256 random bits), shown once when created; the
database keeps only its SHA-256 (a fast hash is enough for a random 256-bit secret: there is
nothing to guess). Roles: `admin` may do everything, `readonly` may only read: GET/HEAD, and the
few POST routes that are reads (READ_POSTS, by route template): a VM's plan takes its inputs in
a body and changes nothing, so a viewer may see it too.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from ferry.common.errors import InvalidInput

ADMIN = "admin"
READONLY = "readonly"
ROLES = (ADMIN, READONLY)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POST routes that only read: the plan (with or without ?forecast=true) sends nothing to libvirt
# but the source agent's dirty-rate measurement, and stores nothing.
READ_POSTS = frozenset({"/api/vms/{vm}/plan"})
TOKEN_PREFIX = "ferry_"
SHOWN_PREFIX_LEN = 12  # "ferry_" + 6 characters: enough to tell tokens apart in a list
_TOKEN = re.compile(r"^ferry_[A-Za-z0-9_-]{43}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    return bool(_TOKEN.match(token))


def check_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    return role  # type: ignore[return-value]


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("name", f"{name!r} is not a token name (letters, digits, '.', '_', '@', '-'; "
                                   "at most 64 characters)")
    return name


def may(role: str, method: str, route: str | None = None) -> bool:
    """Whether a token with `role` may send an HTTP request with `method` to `route` (the
    route's template, e.g. "/api/vms/{vm}/plan"; None: any route, i.e. a change)."""
    if role == ADMIN:
        return True
    if role != READONLY:
        return False
    return method.upper() in READ_METHODS or (method.upper() == "POST" and route in READ_POSTS)

"""The tokens repository: the REST API's bearer tokens (only their SHA-256 is kept)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferry.common.errors import Conflict, NotFound
from ferry.engine import tokens as t
from ferry.engine.db.models import ApiToken, utcnow


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role, "prefix": self.prefix,
                "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


class TokenRepository:
    def __init__(self, session: Session):
        self.session = session

    def free_name(self, role: str) -> str:
        """The role and the next number no token is named with yet ("admin-3")."""
        count = self.session.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()).limit(1)) or 0
        name = f"{role}-{count + 1}"
        while self._named(name) is not None:
            count += 1
            name = f"{role}-{count + 1}"
        return name

    def create(self, role: str, name: str) -> tuple[str, TokenRecord]:
        """Store a new token (role and name checked by services.tokens); the token in clear,
        the only time it exists, and its record."""
        if self._named(name) is not None:
            raise Conflict(f"a token named {name!r} already exists; choose another --name")
        token = t.new_token()
        row = ApiToken(name=name, role=role, token_sha256=t.digest(token), prefix=token[:t.SHOWN_PREFIX_LEN],
                       created_at=utcnow())
        self.session.add(row)
        self.session.flush()
        return token, _record(row)

    def list(self) -> list[TokenRecord]:
        return [_record(r) for r in self.session.scalars(select(ApiToken).order_by(ApiToken.id))]

    def revoke(self, ref: str) -> TokenRecord:
        """Revoke by name or id; revoking twice keeps the first revocation time."""
        row = self._named(ref)
        if row is None and ref.isdigit():
            row = self.session.get(ApiToken, int(ref))
        if row is None:
            raise NotFound("token", ref)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        self.session.flush()
        return _record(row)

    def check(self, token: str) -> TokenRecord | None:
        """The record of a valid token (revoked ones included, so the caller can say so), else None."""
        if not t.looks_like_token(token):
            return None
        row = self.session.scalar(select(ApiToken).where(ApiToken.token_sha256 == t.digest(token)))
        return _record(row) if row is not None else None

    def _named(self, name: str) -> ApiToken | None:
        return self.session.scalar(select(ApiToken).where(ApiToken.name == name))


def _record(row: ApiToken) -> TokenRecord:
    return TokenRecord(row.id, row.name, row.role, row.prefix, row.created_at, row.revoked_at)

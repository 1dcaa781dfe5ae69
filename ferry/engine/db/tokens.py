"""The api_tokens table and its operations: create (returns the token once), list, revoke, check.

Kept beside the store rather than in it: tokens are the API's gate, not inventory.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ferry.common.errors import Conflict, NotFound
from ferry.engine import tokens as t
from ferry.engine.db.models import Base, utcnow


class ApiToken(Base):
    """A bearer token of the REST API: only its SHA-256 is kept (the token is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a token in lists
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


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


def _record(row: ApiToken) -> TokenRecord:
    return TokenRecord(row.id, row.name, row.role, row.prefix, row.created_at, row.revoked_at)


def create_token(session: Session, role: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """A new token (the only time it exists in clear) and its record; the caller commits."""
    t.check_role(role)
    if name is None:
        count = session.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()).limit(1)) or 0
        name = f"{role}-{count + 1}"
        while session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            count += 1
            name = f"{role}-{count + 1}"
    t.check_name(name)
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"a token named {name!r} already exists; choose another --name")
    token = t.new_token()
    row = ApiToken(name=name, role=role, token_sha256=t.digest(token), prefix=token[:t.SHOWN_PREFIX_LEN],
                   created_at=utcnow())
    session.add(row)
    session.flush()
    return token, _record(row)


def list_tokens(session: Session) -> list[TokenRecord]:
    return [_record(r) for r in session.scalars(select(ApiToken).order_by(ApiToken.id))]


def revoke_token(session: Session, ref: str) -> TokenRecord:
    """Revoke by name or id; revoking twice keeps the first revocation time."""
    row = session.scalar(select(ApiToken).where(ApiToken.name == ref))
    if row is None and ref.isdigit():
        row = session.get(ApiToken, int(ref))
    if row is None:
        raise NotFound("token", ref)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()
    return _record(row)


def check_token(session: Session, token: str) -> TokenRecord | None:
    """The record of a valid token (revoked ones included, so the caller can say so), else None."""
    if not t.looks_like_token(token):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == t.digest(token)))
    return _record(row) if row is not None else None


def issue_token(database_url: str | None, role: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """Create a token in the database at `database_url` (schema must be up to date)."""
    from ferry.engine.db.database import Database

    db = Database(database_url)
    try:
        with db.session() as session:
            return create_token(session, role, name)
    finally:
        db.dispose()

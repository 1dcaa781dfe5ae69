"""API tokens for callers that hold a bare session or only a database URL (the CLI's
`ferry token ...`, the demo, the bench, the test fixtures): thin calls into the tokens
repository (ferry.engine.db.repos.tokens), which holds the logic."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ferry.engine.db.models import ApiToken
from ferry.engine.db.repos.tokens import TokenRecord, TokenRepository

__all__ = ["ApiToken", "TokenRecord", "check_token", "create_token", "issue_token", "list_tokens", "revoke_token"]


def create_token(session: Session, role: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """A new token (the only time it exists in clear) and its record; the caller commits."""
    return TokenRepository(session).create(role, name)


def list_tokens(session: Session) -> list[TokenRecord]:
    return TokenRepository(session).list()


def revoke_token(session: Session, ref: str) -> TokenRecord:
    return TokenRepository(session).revoke(ref)


def check_token(session: Session, token: str) -> TokenRecord | None:
    return TokenRepository(session).check(token)


def issue_token(database_url: str | None, role: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """Create a token in the database at `database_url` (schema must be up to date)."""
    from ferry.engine.db.database import Database

    db = Database(database_url)
    try:
        with db.unit_of_work() as store:
            return store.tokens.create(role, name)
    finally:
        db.dispose()

"""The API-token use cases, for callers that hold a bare session or only a database URL (the
CLI's `ferry token ...`, the demo, the bench, the test fixtures).

A new token's role and name are checked here (ferry.engine.tokens names the field and the
reason); a name not given is the role and the next free number ("admin-3"). The tokens
repository (ferry.engine.db.repos.tokens) only stores and finds them (a taken name is a
conflict there, as the database holds names unique)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ferry.engine import tokens as t
from ferry.engine.db.models import ApiToken
from ferry.engine.db.repos.tokens import TokenRecord, TokenRepository

__all__ = ["ApiToken", "TokenRecord", "check_token", "create_token", "issue_token", "list_tokens", "revoke_token"]


def create_token(session: Session, role: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """A new token (the only time it exists in clear) and its record; the caller commits."""
    repo = TokenRepository(session)
    t.check_role(role)
    name = repo.free_name(role) if name is None else name
    t.check_name(name)
    return repo.create(role, name)


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
            return create_token(store.session, role, name)
    finally:
        db.dispose()

"""What every repository shares: the one row lookup, UTC times, and the "not given" marker.

Repositories only persist: they take the value types the use cases (ferry.engine.services)
built and checked, look rows up by reference, and keep what the database itself must hold
(unique names, nothing removed while something refers to it). Input checks and rules across
aggregates (the zero-copy gate, where a VM may run) are the use cases' job.
"""
from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ferry.common.errors import InvalidInput, NotFound
from ferry.engine.db import models as m


class _Unset(Enum):
    """An update argument that was not given (None means "clear it", so it cannot mark absence)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
Unset = _Unset  # the type of UNSET, for `x: int | Unset = UNSET`

R = TypeVar("R", bound=m.Base)
E = TypeVar("E", bound=Enum)

# What each kind of row is called in errors, and the columns a reference may match.
_KINDS: dict[type, tuple[str, tuple[str, ...]]] = {
    m.Cluster: ("cluster", ("name",)),
    m.Host: ("host", ("name",)),
    m.Vm: ("VM", ("name", "uuid")),
    m.Migration: ("migration", ("id",)),
}


def find_row(session: Session, model: type[R], ref: str, field: str | None = None, options: tuple = ()) -> R:
    """The row of `model` named (or, for a VM, with uuid) `ref`. Missing: InvalidInput in
    `field` when the name came in as a reference in some other object, else NotFound.
    `options`: loader options (e.g. its cluster's name in the same query)."""
    kind, columns = _KINDS[model]
    q = select(model).where(or_(*(getattr(model, c) == ref for c in columns)))
    row = session.scalars(q.options(*options) if options else q).first()
    if row is None:
        if field:
            raise InvalidInput(field, f"unknown {kind} {ref!r}")
        raise NotFound(kind, ref)
    return row


def name_taken(session: Session, model: type[m.Base], name: str) -> bool:
    return session.scalars(select(model.id).where(model.name == name)).first() is not None


def utc(t: datetime | None) -> datetime | None:
    """SQLite keeps no time zone; everything the engine stores is UTC."""
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    return t


def now() -> datetime:
    return datetime.now(UTC)


def given(**arguments: Any) -> dict[str, Any]:
    """The update arguments that were given, in their order."""
    return {k: v for k, v in arguments.items() if v is not UNSET}


def as_enum(kind: type[E], value: E | str) -> E:
    """A state given as its member or its stored value (engine code and tests use both)."""
    return value if isinstance(value, kind) else kind(value)

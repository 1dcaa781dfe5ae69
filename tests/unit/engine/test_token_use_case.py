"""Creating API tokens (ferry.engine.services.tokens): role and name are checked before the
repository stores anything, and a name not given is the role and the next free number."""
from __future__ import annotations

import pytest

from ferry.common.errors import Conflict, InvalidInput
from ferry.engine.db import Database, upgrade_database
from ferry.engine.services.tokens import create_token, list_tokens


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade_database(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.mark.parametrize("role, name, field", [("root", "x", "role"), ("admin", "no spaces", "name"),
                                                ("admin", "", "name")])
def test_bad_role_or_name_names_the_field_and_stores_nothing(db, role, name, field):
    with db.unit_of_work() as store:
        with pytest.raises(InvalidInput) as err:
            create_token(store.session, role, name)
        assert err.value.field == field
        assert list_tokens(store.session) == []


def test_default_names_count_on_and_a_taken_name_is_a_conflict(db):
    with db.unit_of_work() as store:
        token, first = create_token(store.session, "admin")
        _, second = create_token(store.session, "readonly")
        assert (first.name, second.name) == ("admin-1", "readonly-2") and token.startswith(first.prefix)
        with pytest.raises(Conflict, match="'admin-1' already exists"):
            create_token(store.session, "admin", "admin-1")

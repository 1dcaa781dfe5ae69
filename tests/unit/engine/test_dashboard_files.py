"""The dashboard's files: served at / and /static/ without a token, shipped in the package, and
nothing in them reaches outside the machine (no CDN, no external fonts or scripts)."""
from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import pytest

from ferry.engine.api import create_app
from ferry.engine.web import STATIC


@pytest.fixture
def client(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(create_app(f"sqlite:///{tmp_path / 'engine.db'}")) as c:
        yield c


def test_page_script_and_style_are_served_without_a_token(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
    assert client.get("/api/hosts").status_code == 401     # the data still needs a token


def test_no_file_loads_anything_from_another_host():
    external = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import""", re.I)
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not external.search(text), f"{path.name}: {external.search(text).group(0)}"


def test_static_files_are_package_data():
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ferry.engine.web"]
    shipped = {p.name for p in STATIC.iterdir() for pat in patterns if p.match(pat.split("/")[-1])}
    assert shipped == {"index.html", "app.js", "style.css"}

"""`ferry pki init|show`, `ferry host enroll HOST`, `ferry token create|list|revoke`.

The PKI commands act on the engine's PKI directory (FERRY_PKI_DIR, default
/var/lib/ferry/pki); the token commands on the engine's database directly (like
`ferry engine db-upgrade`), since the first admin token cannot come from the API it guards.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ferry.common.errors import InvalidInput

pki_dir_option = click.option("--pki-dir", default=None, metavar="DIR",
                              help="The engine's PKI directory (default: FERRY_PKI_DIR, else "
                                   "/var/lib/ferry/pki).")
database_option = click.option("--database-url", default=None, metavar="URL",
                               help="SQLAlchemy URL (default: FERRY_DATABASE_URL, else SQLite in FERRY_STATE_DIR).")


def _pki(pki_dir: str | None):
    from ferry.pki.layout import EnginePki
    from ferry.pki.layout import pki_dir as default_dir

    return EnginePki(Path(pki_dir) if pki_dir else default_dir())


# ---- ferry pki -----------------------------------------------------------------------------------

@click.group("pki")
def pki_group() -> None:
    """The engine's certificate authority (mutual TLS between engine, CLI and agents)."""


@pki_group.command("init")
@pki_dir_option
@click.option("--force", is_flag=True, help="Replace an existing CA (every host must be enrolled again).")
def pki_init(pki_dir, force):
    """Create the engine CA and the engine's client certificate."""
    from ferry.pki.ca import describe, init_ca

    pki = _pki(pki_dir)
    ca = init_ca(pki, force=force)
    facts = describe(ca.cert)
    click.echo(f"engine CA created in {pki.root}")
    click.echo(f"  CA certificate   {pki.ca_cert} (valid until {facts['not_after'][:10]})")
    click.echo(f"  CA key           {pki.ca_key} (0600: keep it on the engine host only)")
    click.echo(f"  engine cert/key  {pki.engine_cert}, {pki.engine_key}")
    click.echo(f"  sha256           {facts['sha256']}")
    click.echo("next: `ferry host enroll HOST` for each host")


@pki_group.command("show")
@pki_dir_option
@click.option("--json", "as_json", is_flag=True)
def pki_show(pki_dir, as_json):
    """The CA's and the engine certificate's subject, validity and fingerprint."""
    from cryptography import x509

    from ferry.pki.ca import CertificateAuthority, describe

    pki = _pki(pki_dir)
    ca = CertificateAuthority.load(pki)
    out = {"dir": str(pki.root), "ca": describe(ca.cert)}
    if pki.engine_cert.exists():
        out["engine"] = describe(x509.load_pem_x509_certificate(pki.engine_cert.read_bytes()))
    hosts = pki.root / "hosts"
    out["bundles"] = sorted(p.name for p in hosts.iterdir()) if hosts.is_dir() else []
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for key in ("ca", "engine"):
        if key in out:
            c = out[key]
            click.echo(f"{key}: {c['subject']}  valid {c['not_before'][:10]} .. {c['not_after'][:10]}  "
                       f"sha256 {c['sha256']}")
    click.echo(f"host bundles: {', '.join(out['bundles']) or '(none)'}")


@pki_group.command("engine-cert")
@click.option("--address", required=True, help="The engine's address or DNS name, as in FERRY_ENGINE_URL.")
@pki_dir_option
def pki_engine_cert(address, pki_dir):
    """Issue the engine's HTTPS certificate (for `ferry engine run --tls`)."""
    from ferry.pki.ca import CertificateAuthority, issue_engine_server_cert

    pki = _pki(pki_dir)
    issue_engine_server_cert(pki, CertificateAuthority.load(pki), address)
    click.echo(f"engine HTTPS certificate for {address}: {pki.engine_server_cert} (key {pki.engine_server_key})")
    click.echo(f"clients: FERRY_ENGINE_URL=https://{address}:8090 and FERRY_ENGINE_CA={pki.ca_cert} "
               "(or [engine] ca in the config file)")


# ---- ferry host enroll ---------------------------------------------------------------------------

@click.command("enroll")
@click.argument("name")
@click.option("--address", default=None, help="The host's address (default: the engine's record of NAME).")
@click.option("--out", "out", default=None, metavar="DIR",
              help="Write the files under DIR as they go under / on the host (default: "
                   "<pki dir>/hosts/NAME; use --out / on the host itself).")
@pki_dir_option
def host_enroll(name, address, out, pki_dir):
    """Issue NAME's agent and libvirt certificates from the engine CA and write them.

    The files mirror their places on the host: /etc/pki/ferry (agent), /etc/pki/CA,
    /etc/pki/libvirt (libvirtd TLS), /etc/pki/qemu (QEMU's TLS migration stream).
    """
    from ferry.pki.enroll import enroll_host

    if address is None:
        from ferry.client.engine_client import EngineClient

        with EngineClient() as client:
            address = client.get(f"/api/hosts/{name}")["address"]
    enrollment = enroll_host(_pki(pki_dir), name, address, Path(out) if out else None)
    click.echo(f"enrolled {name} ({address}): {len(enrollment.files)} files under {enrollment.root}")
    if out is None:
        click.echo(f"copy them to the host: see {enrollment.root / 'INSTALL.txt'}")


# ---- ferry token ---------------------------------------------------------------------------------

def _upgraded_url(database_url: str | None) -> str:
    from ferry.cli.engine import _upgrade
    from ferry.engine.db import database_url as resolve_url

    url = resolve_url(database_url)
    _upgrade(url)
    return url


@click.group("token")
def token_group() -> None:
    """REST API tokens (bearer tokens with a role: admin or readonly)."""


@token_group.command("create")
@click.option("--role", required=True, type=click.Choice(["admin", "readonly"]),
              help="admin may change things; readonly may only read (GET).")
@click.option("--name", default=None, help="A name to recognise it by (default: ROLE-N).")
@database_option
def token_create(role, name, database_url):
    """Create a token; it is printed once (only its SHA-256 is stored)."""
    from ferry.engine.services.tokens import issue_token

    token, record = issue_token(_upgraded_url(database_url), role, name)
    click.echo(token)
    click.echo(f"token {record.name!r} ({record.role}) created; it is shown only now. Use it as "
               "FERRY_ENGINE_TOKEN or [engine] token in ~/.config/ferry/config.toml", err=True)


@token_group.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True)
def token_list(database_url, as_json):
    """Tokens with their role, creation and revocation times (never the tokens themselves)."""
    from ferry.engine.db import Database
    from ferry.engine.services.tokens import list_tokens

    db = Database(_upgraded_url(database_url))
    try:
        with db.session() as session:
            records = [r.to_dict() for r in list_tokens(session)]
    finally:
        db.dispose()
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    from ferry.cli.inventory.common import table as _table

    _table("API tokens", ["id", "name", "role", "starts with", "created", "revoked"],
           [[r["id"], r["name"], r["role"], r["prefix"] + "…", r["created_at"][:19],
             r["revoked_at"][:19] if r["revoked_at"] else None] for r in records])


@token_group.command("revoke")
@click.argument("token")
@database_option
def token_revoke(token, database_url):
    """Revoke TOKEN (its name or id): requests with it get 401 from then on."""
    from ferry.engine.db import Database
    from ferry.engine.services.tokens import revoke_token

    if not token.strip():
        raise InvalidInput("TOKEN", "give the token's name or id (see `ferry token list`)")
    db = Database(_upgraded_url(database_url))
    try:
        with db.session() as session:
            record = revoke_token(session, token)
    finally:
        db.dispose()
    click.echo(f"token {record.name!r} revoked at {record.revoked_at.isoformat()}")


def register(group: click.Group) -> None:
    group.add_command(pki_group)
    group.add_command(token_group)
    host = group.commands.get("host")
    if isinstance(host, click.Group):
        host.add_command(host_enroll)
    else:  # the inventory commands are missing: keep enrollment reachable
        pki_group.add_command(host_enroll)

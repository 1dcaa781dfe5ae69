"""The engine client's config file: where the engine is and which token to send.

    # ~/.config/ferry/config.toml (or the file named by FERRY_CONFIG); keep it 0600
    [engine]
    url = "http://127.0.0.1:8090"
    token = "ferry_..."          # from `ferry token create`
    ca = "/var/lib/ferry/pki/ca.pem"   # optional: CA to check an https:// engine against

The environment (FERRY_ENGINE_URL, FERRY_ENGINE_TOKEN) wins over the file. Unknown keys are
refused, naming the key, so a typo does not silently fall back to a default.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ferry.common.errors import InvalidInput

ENGINE_KEYS = ("url", "token", "ca")


@dataclass(frozen=True)
class CliConfig:
    url: str | None = None
    token: str | None = None
    ca: str | None = None
    source: str | None = None  # the file it came from (for messages)


def config_path(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("FERRY_CONFIG"):
        return Path(env["FERRY_CONFIG"])
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "ferry" / "config.toml"


def parse_config(text: str, source: str = "config") -> CliConfig:
    """The [engine] table of a config file's text (pure)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(source, f"is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"engine"})
    if unknown:
        raise InvalidInput(f"{source}: {unknown[0]}", "unknown table (only [engine] is read)")
    engine = data.get("engine", {})
    if not isinstance(engine, dict):
        raise InvalidInput(f"{source}: engine", "must be a table: [engine]")
    values = {}
    for key, value in engine.items():
        if key not in ENGINE_KEYS:
            raise InvalidInput(f"{source}: engine.{key}", f"unknown key (known: {', '.join(ENGINE_KEYS)})")
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"{source}: engine.{key}", "must be a non-empty string")
        values[key] = value
    return CliConfig(source=source, **values)


def load_config(env: dict[str, str] | None = None) -> CliConfig:
    """The config file's settings (empty when there is no file)."""
    path = config_path(env)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return CliConfig()
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot be read: {exc.strerror}") from None
    return parse_config(text, str(path))


def resolve_engine(url: str | None = None, token: str | None = None,
                   env: dict[str, str] | None = None) -> CliConfig:
    """Engine URL/token/CA from the arguments, else the environment, else the config file."""
    env = os.environ if env is None else env
    file = load_config(env)
    return CliConfig(url=url or env.get("FERRY_ENGINE_URL") or file.url,
                     token=token if token is not None else (env.get("FERRY_ENGINE_TOKEN") or file.token),
                     ca=env.get("FERRY_ENGINE_CA") or file.ca, source=file.source)

"""How the agent's verbs turn exceptions into JSON-RPC errors: one context manager.

`translated` replaces the copies each verb had (issue 10 item 7); ferry.agent.api re-exports it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import INVALID_PARAMS, JsonRpcError, agent_error


def invalid(exc: InvalidInput) -> JsonRpcError:
    return JsonRpcError(INVALID_PARAMS, f"invalid parameter {exc}",
                        {"name": "invalidParams", "field": exc.field, "reason": exc.reason})


def libvirt_message(exc: Exception) -> str:
    getter = getattr(exc, "get_error_message", None)
    return (getter() if getter else None) or str(exc)


@contextmanager
def translated(lv, failed: str | None = None, *, name: str = "unexpected",
               exists: bool = False) -> Iterator[None]:
    """The one place a verb's exceptions become JSON-RPC errors.

    InvalidInput -> invalidParams naming the field and the reason. With `failed` (what was being
    done, e.g. "VM.destroy failed"), a libvirtError -> the Vdsm-style `name` error
    "<failed>: <libvirt's message>", or 'exist' when `exists` and libvirt says it already exists.
    Without `failed`, libvirt errors pass through (the caller handles them).
    """
    try:
        yield
    except InvalidInput as exc:
        raise invalid(exc) from None
    except lv.libvirtError as exc:
        if failed is None:
            raise
        message = libvirt_message(exc)
        if exists and "already exists" in message:
            raise agent_error("exist", f"Virtual machine already exists: {message}") from None
        raise agent_error(name, f"{failed}: {message}") from None

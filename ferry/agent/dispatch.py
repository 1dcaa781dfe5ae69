"""The wrapper each JSON-RPC request goes through before a verb runs: the caller's role
(ferry.agent.authz), then the checks on what would reach libvirt (ferry.agent.vm_checks).

It sits between the HTTP server and the verbs so every verb is covered without each verb
having to remember it, whatever the verbs' module looks like.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ferry.agent import authz
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import INVALID_PARAMS, JsonRpcError, agent_error

Methods = dict[str, Callable[[dict], Any]]


class AccessControl:
    """Hands each request the verbs its caller may use, each one checked.

    `running_here(vm_id)`: whether that VM is a domain running on this host (authz needs it);
    `check_params(method, params)`: raises InvalidInput for values that must not reach libvirt
    (the agent's runner passes ferry.agent.vm_checks.check_request with its own limits).
    """

    def __init__(self, running_here: Callable[[object], bool] = lambda _vm: False,
                 check_params: Callable[[str, dict], None] | None = None,
                 grants: authz.Grants | None = None):
        self.running_here = running_here
        self.check_params = check_params or (lambda _method, _params: None)
        self.grants = grants or authz.Grants()

    def methods_for(self, methods: Methods, caller: authz.Caller | None) -> Methods:
        """`methods` guarded for `caller` (None: the unauthenticated --dev mode: no role check)."""
        return {name: self._guarded(name, fn, caller) for name, fn in methods.items()}

    def _guarded(self, method: str, fn: Callable[[dict], Any], caller: authz.Caller | None) -> Callable[[dict], Any]:
        def call(params: dict) -> Any:
            decision = authz.ALLOW
            if caller is not None:
                vm_id = params.get("vmID")
                decision = authz.decide(caller, method, params, running_here=self.running_here(vm_id),
                                        source=self.grants.source(vm_id))
                if not decision.allowed:
                    raise forbidden(caller.subject, method, decision.reason)
            try:
                self.check_params(method, params)
            except InvalidInput as exc:
                raise JsonRpcError(INVALID_PARAMS, f"invalid parameter {exc}",
                                   {"name": "invalidParams", "field": exc.field, "reason": exc.reason}) from None
            result = fn(params)
            if decision.remember_source and caller is not None and isinstance(params.get("vmID"), str):
                self.grants.remember(params["vmID"], caller.role.host)
            return result
        return call


def forbidden(subject: str, method: str, reason: str) -> JsonRpcError:
    return agent_error("forbidden", f"forbidden for {subject}: {method}: {reason}", method=method)

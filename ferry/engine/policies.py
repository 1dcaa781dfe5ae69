"""Migration policies: the built-ins with oVirt's ids and numbers, and the policy value type.

A policy says how hard to try for convergence (downtime steps per stalled iteration, then what
to do last), how many migrations a host runs at once, and which QEMU features to use. The
built-ins are read-only; custom policies are validated by `validate_policy`.

"Adaptive" is Ferry's own built-in and goes beyond oVirt: besides a plain fallback schedule (what
an older agent runs), it sends `adaptive` bounds (`ferry.protocol.adaptive`), and the agent picks
the strategy from a live forecast (`ferry.agent.adaptive`): a downtime only as high as the data
left needs, a stronger throttle, post-copy, or an early abort with the reason.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from ferry.common.errors import InvalidInput, NotFound
from ferry.protocol.schedule import (
    ABORT,
    ACTIONS,
    MAX_DOWNTIME_MS,
    POSTCOPY,
    SET_DOWNTIME,
    Action,
    Schedule,
    StallingStep,
)


@dataclass(frozen=True)
class MigrationPolicy:
    id: str
    name: str
    description: str = ""
    max_migrations: int = 2
    auto_converge: bool = False
    compression: bool = False
    guest_events: bool = False
    zerocopy: bool = False
    init: tuple[Action, ...] = ()
    stalling: tuple[StallingStep, ...] = ()
    last_items: tuple[Action, ...] = ()      # run one per iteration after the stalling steps
    builtin: bool = False
    legacy: bool = False           # Legacy: no schedule sent, the agent's own downtime steps
    adaptive_max_downtime_ms: int | None = None   # Ferry's Adaptive: the agent decides within this

    def schedule(self) -> Schedule | None:
        """The convergenceSchedule sent in VM.migrate (None for Legacy: the agent decides); the
        last items are stalling steps with limit -1."""
        if self.legacy:
            return None
        return Schedule(self.init, self.stalling + tuple(StallingStep(-1, a) for a in self.last_items))


def _downtime(ms: int) -> Action:
    return Action(SET_DOWNTIME, ms)


def _steps(*pairs: tuple[int, int]) -> tuple[StallingStep, ...]:
    return tuple(StallingStep(limit, _downtime(ms)) for limit, ms in pairs)


_ABORT = Action(ABORT)
_POSTCOPY = Action(POSTCOPY)

MINIMAL_DOWNTIME_ID = "80554327-0569-496b-bdeb-fcbbf52b827b"
SUSPEND_WORKLOAD_ID = "80554327-0569-496b-bdeb-fcbbf52b827c"
POST_COPY_ID = "a7aeedb2-8d66-4e51-bb22-32595027ce71"
VERY_LARGE_VMS_ID = "57237b82-b8c2-425f-b425-114b35219626"
LEGACY_ID = "00000000-0000-0000-0000-000000000000"
ADAPTIVE_ID = "f3c1a2d4-7b5e-4c8a-9e21-6d0b3a5f7c19"   # Ferry's own (not an oVirt id)
ADAPTIVE_MAX_DOWNTIME_MS = 2000

_STANDARD_STEPS = _steps((1, 150), (2, 200), (3, 300), (4, 400), (6, 500))

BUILTIN_POLICIES: tuple[MigrationPolicy, ...] = (
    MigrationPolicy(
        id=MINIMAL_DOWNTIME_ID, name="Minimal downtime",
        description="A safe policy in which the VM should not notice the migration in usual situations.",
        max_migrations=2, auto_converge=True, compression=False, guest_events=True,
        init=(_downtime(100),), stalling=_STANDARD_STEPS, last_items=(_ABORT,), builtin=True,
    ),
    MigrationPolicy(
        id=SUSPEND_WORKLOAD_ID, name="Suspend workload if needed",
        description="Lets the VM migrate in most cases, even under heavy load; it may notice a longer downtime.",
        max_migrations=1, auto_converge=True, compression=True, guest_events=True,
        init=(_downtime(100),), stalling=_STANDARD_STEPS, last_items=(_downtime(5000), _ABORT), builtin=True,
    ),
    MigrationPolicy(
        id=POST_COPY_ID, name="Post-copy migration",
        description="Switches to post-copy when pre-copy does not converge; the VM runs on the destination early.",
        max_migrations=2, auto_converge=True, compression=False, guest_events=True,
        init=(_downtime(100),), stalling=_steps((1, 150), (2, 200)), last_items=(_POSTCOPY, _ABORT), builtin=True,
    ),
    MigrationPolicy(
        id=VERY_LARGE_VMS_ID, name="Very large VMs",
        description="For VMs with very much RAM (>1 TB): zero-copy parallel migration and longer downtimes.",
        max_migrations=1, auto_converge=True, compression=False, guest_events=True, zerocopy=True,
        init=(_downtime(300),), stalling=_steps((1, 400), (2, 500), (3, 700), (4, 1000), (6, 1500)),
        last_items=(_downtime(5000), _ABORT), builtin=True,
    ),
    MigrationPolicy(
        id=LEGACY_ID, name="Legacy",
        description="The host agent's own behaviour: no schedule is sent.",
        max_migrations=2, auto_converge=False, compression=False, guest_events=False,
        builtin=True, legacy=True,
    ),
    MigrationPolicy(
        id=ADAPTIVE_ID, name="Adaptive",
        description=("Ferry's own, beyond oVirt: the agent forecasts the migration as it runs and raises the "
                     f"downtime only as far as needed (at most {ADAPTIVE_MAX_DOWNTIME_MS} ms), throttles harder, "
                     "switches to post-copy where allowed, or aborts early with the reason."),
        max_migrations=2, auto_converge=True, compression=False, guest_events=True,
        # The fallback an agent without adaptive convergence runs: Post-copy migration's shape,
        # up to the same maximum downtime.
        init=(_downtime(300),), stalling=_steps((1, 500), (2, 1000), (3, ADAPTIVE_MAX_DOWNTIME_MS)),
        last_items=(_POSTCOPY, _ABORT), builtin=True, adaptive_max_downtime_ms=ADAPTIVE_MAX_DOWNTIME_MS,
    ),
)

BUILTIN_BY_ID = {p.id: p for p in BUILTIN_POLICIES}
BUILTIN_BY_NAME = {p.name.lower(): p for p in BUILTIN_POLICIES}


# --- Lookup, validation and (de)serialisation of custom policies --------------------------

MAX_NAME_LENGTH = 128
MAX_MIGRATIONS_LIMIT = 64        # the agent's outgoing/incoming limit ceiling
MAX_STALLING_LIMIT = 1_000_000
# Custom policies without an id get a stable one derived from the name (same name, same id).
_CUSTOM_ID_NAMESPACE = uuid.UUID("5b3f4c36-6a2e-4f3e-9d55-2f7e0c3f1a9b")


def find_policy(key: str, custom: Iterable[MigrationPolicy] = (), *, field: str = "policy") -> MigrationPolicy:
    """A policy by id or by name (case-insensitive), built-ins first; NotFound otherwise."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(field, f"a policy id or name is required, got {key!r}")
    wanted = key.strip()
    for policy in (*BUILTIN_POLICIES, *custom):
        if policy.id.lower() == wanted.lower() or policy.name.lower() == wanted.lower():
            return policy
    raise NotFound("policy", wanted)


def check_policy_allowed(policy: MigrationPolicy, parallel_supported: bool, *, field: str = "policy") -> None:
    """A zero-copy policy can be chosen only where parallel migrations are supported."""
    if policy.zerocopy and not parallel_supported:
        raise InvalidInput(
            field,
            f"policy {policy.name!r} uses zero-copy migrations, which need parallel migrations, "
            "and parallel migrations are not supported in this cluster",
        )


def _int_in(value, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(field, f"must be {lo}..{hi}, got {value}")
    return value


def _check_params(name, params: tuple, field: str) -> None:
    """setDowntime takes one value, the others none (checked on the plain form, where a second
    value can be written)."""
    if name == SET_DOWNTIME and len(params) != 1:
        raise InvalidInput(f"{field}.params", f"setDowntime takes one value (milliseconds), got {list(params)!r}")
    if name != SET_DOWNTIME and params:
        raise InvalidInput(f"{field}.params", f"{name} takes no values, got {list(params)!r}")


def _check_action(action: Action, field: str) -> None:
    if action.name not in ACTIONS:
        raise InvalidInput(f"{field}.name", f"unknown action {action.name!r} (one of {', '.join(ACTIONS)})")
    _check_params(action.name, action.params, field)
    if action.name == SET_DOWNTIME:
        _int_in(action.downtime_ms, f"{field}.params[0]", 1, MAX_DOWNTIME_MS)


def validate_policy(policy: MigrationPolicy, existing: Iterable[MigrationPolicy] = ()) -> MigrationPolicy:
    """Checks a custom policy; returns it unchanged or raises InvalidInput naming the field.

    `existing`: the other custom policies (when updating one, leave it out): neither a name
    (case-insensitive) nor an id may be used twice, nor a built-in's.
    """
    if policy.builtin or policy.legacy:
        raise InvalidInput("builtin", "custom policies cannot be built-in or Legacy")
    try:
        uuid.UUID(str(policy.id))
    except ValueError:
        raise InvalidInput("id", f"must be a UUID, got {policy.id!r}") from None
    name = policy.name
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name", "a policy needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("name", f"at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    others = (*BUILTIN_POLICIES, *existing)
    for other in others:
        if other.name.lower() == name.strip().lower():
            raise InvalidInput("name", f"a policy named {other.name!r} already exists")
    for other in others:
        if other.id.lower() == str(policy.id).lower():
            kind = "built-in policy" if other.builtin else "policy"
            raise InvalidInput("id", f"{policy.id} is already the id of {kind} {other.name!r}")
    _int_in(policy.max_migrations, "max_migrations", 1, MAX_MIGRATIONS_LIMIT)
    for attr in ("auto_converge", "compression", "guest_events", "zerocopy"):
        if not isinstance(getattr(policy, attr), bool):
            raise InvalidInput(attr, f"must be true or false, got {getattr(policy, attr)!r}")
    if policy.zerocopy and policy.compression:
        raise InvalidInput("compression", "a zero-copy policy cannot use compression (QEMU refuses "
                           "zero-copy with any compression)")

    for i, action in enumerate(policy.init):
        _check_action(action, f"init[{i}]")
        if action.name != SET_DOWNTIME:
            raise InvalidInput(f"init[{i}].name", f"only setDowntime can run at start, got {action.name}")
    previous = -1
    for i, item in enumerate(policy.stalling):
        f = f"stalling[{i}]"
        _int_in(item.limit, f"{f}.limit", 0, MAX_STALLING_LIMIT)
        if item.limit < previous:
            raise InvalidInput(f"{f}.limit", f"limits must not decrease (the agent runs them in order): "
                               f"{item.limit} after {previous}")
        previous = item.limit
        _check_action(item.action, f"{f}.action")
    for i, action in enumerate(policy.last_items):
        _check_action(action, f"last_items[{i}]")
    # Nothing runs after abort: an action behind it is a mistake worth saying.
    sequence = [(f"stalling[{i}].action", s.action) for i, s in enumerate(policy.stalling)]
    sequence += [(f"last_items[{i}]", a) for i, a in enumerate(policy.last_items)]
    for (_, action), (later_field, later) in zip(sequence, sequence[1:]):
        if action.name == ABORT:
            raise InvalidInput(later_field, f"{later.name} comes after abort and would never run")
        if action.name == POSTCOPY and later.name == POSTCOPY:
            raise InvalidInput(later_field, "post-copy can be started only once")
    return policy


def _action_from(raw, field: str) -> Action:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise InvalidInput(field, f"must be an action like {{name: setDowntime, params: [500]}}, got {raw!r}")
    unknown = set(raw) - {"name", "params"}
    if unknown:
        raise InvalidInput(f"{field}.{sorted(unknown)[0]}", "unknown key (an action has name and params)")
    name = raw.get("name")
    if not isinstance(name, str):
        raise InvalidInput(f"{field}.name", f"must be one of {', '.join(ACTIONS)}, got {name!r}")
    params = raw.get("params", [])
    if not isinstance(params, (list, tuple)):
        params = [params]
    values = []
    for j, p in enumerate(params):
        # The wire form carries numbers as strings ("500"); accept both.
        if isinstance(p, str) and p.strip().lstrip("-").isdigit():
            p = int(p.strip())
        if isinstance(p, bool) or not isinstance(p, int):
            raise InvalidInput(f"{field}.params[{j}]", f"must be an integer, got {p!r}")
        values.append(p)
    if name in ACTIONS:
        _check_params(name, tuple(values), field)
    action = Action.from_params(name, values)
    _check_action(action, field)
    return action


_POLICY_KEYS = {"id", "name", "description", "max_migrations", "auto_converge", "compression",
                "guest_events", "zerocopy", "init", "stalling", "last_items"}
# Alternative spellings people will use (oVirt's API and Vdsm's wire names).
_POLICY_ALIASES = {"maxMigrations": "max_migrations", "autoConverge": "auto_converge",
                   "compressed": "compression", "enableGuestEvents": "guest_events",
                   "guestEvents": "guest_events", "zeroCopy": "zerocopy", "lastItems": "last_items",
                   "convergence": "stalling"}


def policy_from_dict(raw: dict, existing: Iterable[MigrationPolicy] = ()) -> MigrationPolicy:
    """A validated custom policy from plain data (API bodies, scenario files).

    Shape: {name, id?, description?, max_migrations, auto_converge, compression, guest_events,
    zerocopy, init: [{name, params}], stalling: [{limit, action: {name, params}}],
    last_items: [{name, params}]}. Without an id, one is derived from the name.
    """
    if not isinstance(raw, dict):
        raise InvalidInput("policy", f"must be an object, got {type(raw).__name__}")
    data = {}
    for key, value in raw.items():
        canonical = _POLICY_ALIASES.get(key, key)
        if canonical not in _POLICY_KEYS:
            raise InvalidInput(str(key), f"unknown policy field (known: {', '.join(sorted(_POLICY_KEYS))})")
        data[canonical] = value
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name", f"a policy needs a name, got {name!r}")
    try:
        name.encode("utf-8")   # its id is derived from it; lone surrogates cannot be stored either
    except UnicodeEncodeError:
        raise InvalidInput("name", "must be valid Unicode text (it contains a lone surrogate)") from None
    name = name.strip()
    policy_id = data.get("id") or str(uuid.uuid5(_CUSTOM_ID_NAMESPACE, name.lower()))
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        raise InvalidInput("description", f"must be text, got {description!r}")

    def seq(key: str) -> list:
        value = data.get(key)
        if value is None:          # absent or null: none (an empty {} or "" is not a list)
            return []
        if not isinstance(value, (list, tuple)):
            raise InvalidInput(key, f"must be a list, got {value!r}")
        return list(value)

    init = tuple(_action_from(a, f"init[{i}]") for i, a in enumerate(seq("init")))
    stalling = []
    for i, item in enumerate(seq("stalling")):
        f = f"stalling[{i}]"
        if not isinstance(item, dict) or "limit" not in item or "action" not in item:
            raise InvalidInput(f, f"must be {{limit: N, action: {{name, params}}}}, got {item!r}")
        unknown = set(item) - {"limit", "action"}
        if unknown:
            raise InvalidInput(f"{f}.{sorted(unknown)[0]}", "unknown key (a stalling item has limit and action)")
        limit = item["limit"]
        if isinstance(limit, str) and limit.strip().lstrip("-").isdigit():
            limit = int(limit)
        stalling.append(StallingStep(limit, _action_from(item["action"], f"{f}.action")))
    last_items = tuple(_action_from(a, f"last_items[{i}]") for i, a in enumerate(seq("last_items")))
    policy = MigrationPolicy(
        id=str(policy_id), name=name, description=description,
        max_migrations=data.get("max_migrations", 2),
        auto_converge=data.get("auto_converge", False),
        compression=data.get("compression", False),
        guest_events=data.get("guest_events", False),
        zerocopy=data.get("zerocopy", False),
        init=init, stalling=tuple(stalling), last_items=last_items,
    )
    return validate_policy(policy, existing)


def policy_to_dict(policy: MigrationPolicy) -> dict:
    """The plain form `policy_from_dict` reads (plus builtin/legacy), for the API and JSON output."""
    return {
        "id": policy.id, "name": policy.name, "description": policy.description,
        "max_migrations": policy.max_migrations, "auto_converge": policy.auto_converge,
        "compression": policy.compression, "guest_events": policy.guest_events,
        "zerocopy": policy.zerocopy,
        "init": [{"name": a.name, "params": list(a.params)} for a in policy.init],
        "stalling": [{"limit": s.limit, "action": {"name": s.action.name, "params": list(s.action.params)}}
                     for s in policy.stalling],
        "last_items": [{"name": a.name, "params": list(a.params)} for a in policy.last_items],
        "builtin": policy.builtin, "legacy": policy.legacy,
    }

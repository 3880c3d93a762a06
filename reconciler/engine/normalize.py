"""Normalise desired specs and live objects into one comparable shape per kind.

Both sides go through the same functions, so that server defaults, the model string vs
object forms, the order of unordered collections and output-only fields never show up as
changes. The server defaults assumed here are listed in docs/architecture.md ("Server
defaults") and implemented by the local provider; keep the three in step.

Fields whose server default is unknown to us (an agent model's ``effort``, a skill's resolved
``version``, an environment's ``scope``, a credential's ``injection_location``) are compared
only when the manifest sets them: ``fill_unset`` copies the live value across otherwise.

Nothing here does I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from reconciler.jsontypes import JSON

T = TypeVar("T")

PACKAGE_MANAGERS = ("pip", "npm", "apt", "cargo", "gem", "go")
TOOLSET_DEFAULT_POLICY = {
    "agent_toolset_20260401": {"type": "always_allow"},
    "mcp_toolset": {"type": "always_ask"},
}

#: Output-only fields per kind: never compared.
OUTPUT_ONLY: dict[str, frozenset[str]] = {
    "agent": frozenset({"id", "type", "version", "created_at", "updated_at", "archived_at"}),
    "environment": frozenset({"id", "type", "created_at", "updated_at", "archived_at"}),
    "vault": frozenset({"id", "type", "created_at", "updated_at", "archived_at"}),
    "credential": frozenset({"id", "type", "vault_id", "created_at", "updated_at", "archived_at"}),
    "memory_store": frozenset({"id", "type", "created_at", "updated_at", "archived_at"}),
    "deployment": frozenset(
        {
            "id",
            "type",
            "created_at",
            "updated_at",
            "archived_at",
            "status",
            "paused_reason",
            "last_run_at",
            "upcoming_runs_at",
        }
    ),
}

#: The comparable fields of each kind, with the value that means "unset".
FIELD_DEFAULTS: dict[str, dict[str, Any]] = {
    "agent": {
        "name": None,
        "model": None,
        "description": None,
        "system": None,
        "tools": [],
        "mcp_servers": [],
        "skills": [],
        "execution_identity": {"type": "service_account"},
        "multiagent": None,
        "metadata": {},
    },
    "environment": {
        "name": None,
        "description": None,
        "config": None,  # filled by normalize_env_config
        "scope": None,
        "metadata": {},
    },
    "vault": {"display_name": None, "metadata": {}},
    "credential": {"display_name": None, "metadata": {}, "auth": None},
    # seeds (``memories``) are written once at create and never compared: agents own them
    "memory_store": {"name": None, "description": None, "metadata": {}},
    "deployment": {
        "name": None,
        "description": None,
        "agent": None,
        "environment_id": None,
        "vault_ids": [],
        "initial_events": [],
        "resources": [],
        "schedule": None,
        "budget": None,
        "metadata": {},
    },
}

#: Lists of scalars whose order means nothing, per kind (``*`` matches any key): ``normalize``
#: sorts them and ``diff_objects`` compares them by value (``+ api.github.com``), not by index.
UNORDERED_LISTS: dict[str, tuple[str, ...]] = {
    "environment": ("config.networking.allowed_hosts", "config.packages.*"),
    "credential": ("auth.networking.allowed_hosts",),
    "deployment": ("vault_ids",),
}

#: Lists of objects told apart by a key field, per kind (``*`` matches any key or index):
#: ``normalize`` sorts them by that key and ``diff_objects`` matches items by it, so a change
#: reads ``mcp_servers[github].url`` and adding a server does not shift the others.
KEYED_LISTS: dict[str, dict[str, str]] = {
    "agent": {"mcp_servers": "name", "skills": "skill_id", "tools.*.configs": "name"},
}

#: Lists of objects whose order means nothing to the provider but that no one field tells
#: apart, per kind: an agent's tools (a toolset by its type and MCP server, a custom tool by
#: its name) and a deployment's resources (what each mounts, and where). The wire keeps them
#: as sent, yet nothing reads their order: the tools are what the agent may use, the resources
#: what each session mounts. ``align_items`` puts the live items in the manifest's order
#: (matched by ``item_identity``) before the diff, so a reorder is no change and a change
#: reads at the manifest's index; the lockfile's digest sorts them (``desired``).
REORDERABLE_LISTS: dict[str, str] = {"agent": "tools", "deployment": "resources"}

#: the fields that say which tool or mount an item of a ``REORDERABLE_LISTS`` list is
_IDENTITY_FIELDS = ("type", "mcp_server_name", "name", "memory_store_id", "url", "file_id")


def item_identity(item: Any) -> str:
    """Which tool or mount ``item`` is: ``["mcp_toolset", "github"]`` as text."""
    if not isinstance(item, dict):
        return repr(item)
    return repr([item.get(k) for k in _IDENTITY_FIELDS])


def align_items(kind: str, live: JSON, desired: JSON) -> JSON:
    """``live`` with its ``REORDERABLE_LISTS`` list in the order of ``desired``'s: each
    desired item takes the first live item of the same identity still free; live items no
    desired one takes follow, in their own order."""
    field = REORDERABLE_LISTS.get(kind)
    if field is None:
        return live
    items, wanted = live.get(field), desired.get(field)
    if not isinstance(items, list) or not isinstance(wanted, list) or len(items) < 2:
        return live
    at = matched_indexes(items, wanted)
    order = sorted(range(len(items)), key=lambda i: at[i])
    return live if order == sorted(order) else {**live, field: [items[i] for i in order]}


def align_paths(kind: str, paths: Mapping[str, T], live: JSON, desired: JSON) -> dict[str, T]:
    """``paths`` (``resources[0].authorization_token``: a secret's path the lockfile
    recorded, at the index of the item as last applied, the live order) at the index of
    the desired item that matches its item (``matched_indexes``), where the diff shows it."""
    field = REORDERABLE_LISTS.get(kind)
    items = live.get(field) if field is not None else None
    wanted = desired.get(field) if field is not None else None
    if field is None or not isinstance(items, list) or not isinstance(wanted, list):
        return dict(paths)
    at = matched_indexes(items, wanted)
    out: dict[str, T] = {}
    for path, value in paths.items():
        index, bracket, rest = path.removeprefix(field + "[").partition("]")
        if path.startswith(field + "[") and bracket and index.isdigit() and int(index) in at:
            path = f"{field}[{at[int(index)]}]{rest}"
        out[path] = value
    return out


def matched_indexes(items: list[Any], wanted: list[Any]) -> dict[int, int]:
    """Index in ``items`` (live) -> index in ``wanted`` (desired) of the item that takes
    it: each wanted item, in order, takes the first live item of its identity still free;
    the live items none takes get the indexes after ``wanted``'s, in their own order."""
    free = list(range(len(items)))
    out: dict[int, int] = {}
    for j, want in enumerate(wanted):
        identity = item_identity(want)
        found = next((i for i in free if item_identity(items[i]) == identity), None)
        if found is not None:
            out[found] = j
            free.remove(found)
    out.update({i: len(wanted) + k for k, i in enumerate(free)})
    return out


SECRET_FIELDS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "secret_value",
        "authorization_token",  # deployment resources: github_repository
    }
)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data; ~10x faster than ``copy.deepcopy``, which planning
    calls for every resource.

    Dicts and lists are copied all the way down, str/int/float/bool/None are shared (they
    are immutable) and anything else goes to ``copy.deepcopy``.
    """
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    if kind in _JSON_SCALARS:
        return value
    return copy.deepcopy(value)


def _blank_to_none(v: Any) -> Any:
    return None if v == "" else v


def _norm_model(model: Any) -> Any:
    if model is None:
        return None
    if isinstance(model, str):
        model = {"id": model}
    out = dict(model)
    out.setdefault("speed", "standard")
    out.setdefault("inference_geo", None)
    if out.get("speed") is None:
        out["speed"] = "standard"
    effort = out.get("effort")
    if isinstance(effort, str):
        out["effort"] = {"type": effort}
    elif effort is None:
        out.pop("effort", None)
    return out


def _norm_tool(tool: JSON) -> JSON:
    tool = copy.deepcopy(tool)
    ttype = tool.get("type")
    if ttype not in TOOLSET_DEFAULT_POLICY:
        return tool
    default = dict(tool.get("default_config") or {})
    default.setdefault("enabled", True)
    if default.get("enabled") is None:
        default["enabled"] = True
    if default.get("permission_policy") is None:
        default["permission_policy"] = dict(TOOLSET_DEFAULT_POLICY[ttype])
    tool["default_config"] = default
    configs: list[JSON] = []
    for cfg in tool.get("configs") or []:
        c = {k: v for k, v in cfg.items() if k != "type" and v is not None}
        if isinstance(c.get("url_sources"), dict):
            # the request shorthand "all" / "none" is answered as {"type": "all"} / ...
            c["url_sources"] = {
                k: {"type": v} if v in ("all", "none") else v
                for k, v in c["url_sources"].items()
                if v is not None
            }
        c.setdefault("enabled", default["enabled"])
        c.setdefault("permission_policy", default["permission_policy"])
        extras = {k for k in c if k not in ("name", "enabled", "permission_policy")}
        # A config equal to the default says nothing: servers may list or omit such entries.
        if (
            extras
            or c["enabled"] != default["enabled"]
            or (c["permission_policy"] != default["permission_policy"])
        ):
            configs.append(c)
    tool["configs"] = sorted(configs, key=lambda c: str(c.get("name")))
    return tool


def normalize_env_config(config: Any) -> Any:
    if config is None:
        config = {"type": "cloud"}
    config = copy.deepcopy(config)
    if config.get("type") != "cloud":
        return {"type": config.get("type")}
    net = config.get("networking") or {"type": "unrestricted"}
    if net.get("type") == "limited":
        net = {
            "type": "limited",
            "allowed_hosts": sorted(net.get("allowed_hosts") or []),
            "allow_mcp_servers": bool(net.get("allow_mcp_servers") or False),
            "allow_package_managers": bool(net.get("allow_package_managers") or False),
        }
    else:
        net = {"type": net.get("type", "unrestricted")}
    pk = config.get("packages") or {}
    packages = {m: sorted(pk.get(m) or []) for m in PACKAGE_MANAGERS}
    return {"type": "cloud", "networking": net, "packages": packages}


def _norm_auth(auth: Any) -> Any:
    """Credential auth without its secrets (they are compared by fingerprint)."""
    if auth is None:
        return None

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in SECRET_FIELDS}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    out = strip(auth)
    net = out.get("networking")
    if isinstance(net, dict) and net.get("type") == "limited":
        out["networking"] = {
            "type": "limited",
            "allowed_hosts": sorted(net.get("allowed_hosts") or []),
        }
    refresh = out.get("refresh")
    if isinstance(refresh, dict):
        refresh = dict(refresh)
        refresh.setdefault("resource", None)
        # "" is the wire's word for no scope: an update clears it, and none is stored
        refresh["scope"] = refresh.get("scope") or None
        tea = refresh.get("token_endpoint_auth")
        if isinstance(tea, dict):
            refresh["token_endpoint_auth"] = {"type": tea.get("type")}
        out["refresh"] = refresh
    if out.get("type") == "mcp_oauth":
        out.setdefault("expires_at", None)
        out.setdefault("refresh", None)
        out["expires_at"] = _norm_timestamp(out["expires_at"])
    return out


#: what the provider stores for a ``multiagent_20261001`` member the request leaves out
MULTIAGENT_MEMBER_DEFAULTS: dict[str, JSON] = {
    "advisor": {"type": "disabled"},
    "subagents": {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []},
    "workflows": {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []},
}


def normalize_multiagent(multiagent: Any, own_id: Any = None) -> Any:
    """One form for a multiagent config, desired or live, that is also a full request (an
    update merges a ``multiagent_20261001`` onto the stored one, so an omitted member would
    keep its live value: the update sends this form).

    - a roster entry given as an agent id string is ``{type: agent, id}``; an unversioned
      reference has no ``version`` (the provider resolves it: ``fill_unset`` takes the live one);
    - the provider resolves a roster's ``{"type": "self"}`` into a reference to the agent
      itself (``{type: agent, id: <own id>, version}``); the live side says ``self`` again;
    - ``multiagent_20261001`` members the manifest leaves out take the provider's defaults.
    """
    if not isinstance(multiagent, dict):
        return multiagent

    def entry(e: Any) -> Any:
        if isinstance(e, str):
            return {"type": "agent", "id": e}
        if not isinstance(e, dict) or e.get("type") != "agent":
            return e
        if own_id is not None and e.get("id") == own_id:
            return {"type": "self"}
        return {k: v for k, v in e.items() if not (k == "version" and v is None)}

    def back(entries: Any) -> Any:
        return [entry(e) for e in entries] if isinstance(entries, list) else entries

    out = copy_json(multiagent)
    if "agents" in out:
        out["agents"] = back(out["agents"])
    if out.get("type") != "multiagent_20261001":
        return out
    for name, default in MULTIAGENT_MEMBER_DEFAULTS.items():
        member = out.get(name)
        if not isinstance(member, dict):
            out[name] = copy_json(default)
        elif member.get("type") == "disabled":
            out[name] = {"type": "disabled"}
        elif name != "advisor":
            member["inline_agents"] = member.get("inline_agents") or {"type": "enabled"}
            member["predefined_agents"] = back(member.get("predefined_agents") or [])
    return out


def _roster_versions(desired: Any, live: Any) -> None:
    """An unversioned agent reference of the manifest takes the version the provider
    resolved it to (the live entry for the same agent)."""
    if not isinstance(desired, dict) or not isinstance(live, dict):
        return
    lists = [("agents",), ("subagents", "predefined_agents"), ("workflows", "predefined_agents")]
    for path in lists:
        d: Any = desired
        lv: Any = live
        for key in path:
            d = d.get(key) if isinstance(d, dict) else None
            lv = lv.get(key) if isinstance(lv, dict) else None
        if not isinstance(d, list) or not isinstance(lv, list):
            continue
        versions = {
            e.get("id"): e["version"]
            for e in lv
            if isinstance(e, dict) and e.get("type") == "agent" and "version" in e
        }
        for e in d:
            unversioned = isinstance(e, dict) and e.get("type") == "agent" and "version" not in e
            if unversioned and e.get("id") in versions:
                e["version"] = versions[e.get("id")]


def _norm_timestamp(value: Any) -> Any:
    """One spelling per instant: the provider answers ``...T00:00:00.000000Z`` for
    ``...T00:00:00Z`` (and UTC for any offset)."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _norm_store_mount(resource: JSON) -> JSON:
    """A memory-store resource of a deployment: the store, access and instructions; the
    provider's snapshots of the store (name, description, mount path) are output-only."""
    return {
        "type": "memory_store",
        "memory_store_id": resource.get("memory_store_id"),
        "access": resource.get("access") or "read_write",
        "instructions": _blank_to_none(resource.get("instructions")),
    }


def normalize(kind: str, obj: JSON) -> JSON:
    """The comparable form of a desired spec or a live object of ``kind``.

    Example: ``normalize("agent", {"name": "a", "model": "m"})["model"] ==
    {"id": "m", "speed": "standard", "inference_geo": None}``.
    """
    defaults = FIELD_DEFAULTS[kind]
    out: JSON = {}
    for field, default in defaults.items():
        value = obj.get(field, default)
        out[field] = copy.deepcopy(default) if value is None and default is not None else value
    if kind == "agent":
        out["description"] = _blank_to_none(out["description"])
        out["system"] = _blank_to_none(out["system"])
        out["model"] = _norm_model(out["model"])
        out["tools"] = [_norm_tool(t) for t in out["tools"] or []]
        out["mcp_servers"] = sorted(out["mcp_servers"] or [], key=lambda s: str(s.get("name")))
        out["skills"] = sorted(
            (dict(s) for s in out["skills"] or []),
            key=lambda s: (str(s.get("type")), str(s.get("skill_id"))),
        )
        for s in out["skills"]:
            if s.get("version") in (None, "latest"):
                s.pop("version", None)
        if not out["execution_identity"]:
            out["execution_identity"] = {"type": "service_account"}
        out["multiagent"] = normalize_multiagent(out["multiagent"], obj.get("id"))
    elif kind == "environment":
        out["description"] = _blank_to_none(out["description"])
        out["config"] = normalize_env_config(out["config"])
    elif kind == "memory_store":
        out["description"] = _blank_to_none(out["description"])
    elif kind == "credential":
        out["display_name"] = _blank_to_none(out["display_name"])
        out["auth"] = _norm_auth(out["auth"])
    elif kind == "deployment":
        out["description"] = _blank_to_none(out["description"])
        out["vault_ids"] = sorted(out["vault_ids"] or [])
        agent = out["agent"]
        if isinstance(agent, dict):
            out["agent"] = {"id": agent.get("id"), "version": agent.get("version")}
        resources = []
        for r in out["resources"] or []:
            if r.get("type") == "memory_store":
                resources.append(_norm_store_mount(r))
                continue
            r = {k: v for k, v in r.items() if k != "authorization_token"}
            resources.append(r)
        out["resources"] = resources
        schedule = out["schedule"]
        if isinstance(schedule, dict):
            # computed fields the provider nests inside the schedule
            out["schedule"] = {
                k: v for k, v in schedule.items() if k not in ("last_run_at", "upcoming_runs_at")
            }
    # the provider's metadata patch deletes a key set to "": an empty value means no key
    out["metadata"] = {k: v for k, v in (out["metadata"] or {}).items() if v not in ("", None)}
    return out


#: (kind, dotted path) whose value is compared only when the manifest sets it. An
#: injection location's two places each: the manifest may set one (``{header: true}``) and
#: leave the other to the provider, which an update keeps as it is.
SERVER_CHOSEN: dict[str, tuple[str, ...]] = {
    "agent": ("model.effort",),
    "environment": ("scope",),
    "credential": (
        "auth.injection_location",
        "auth.injection_location.body",
        "auth.injection_location.header",
    ),
}


def fill_unset(kind: str, desired: JSON, live: JSON) -> JSON:
    """Copy server-chosen values the manifest leaves unset from ``live`` into ``desired``."""
    desired = copy_json(desired)
    for path in SERVER_CHOSEN.get(kind, ()):
        head, _, tail = path.partition(".")
        if not tail:
            if desired.get(head) is None and head in live:
                desired[head] = live[head]
            continue
        d, lv = desired.get(head), live.get(head)
        *parents, last = tail.split(".")
        for key in parents:
            d = d.get(key) if isinstance(d, dict) else None
            lv = lv.get(key) if isinstance(lv, dict) else None
        if isinstance(d, dict) and isinstance(lv, dict) and last not in d and last in lv:
            d[last] = copy.deepcopy(lv[last])
    if kind == "agent":
        live_skills = {(s.get("type"), s.get("skill_id")): s for s in live.get("skills") or []}
        for s in desired.get("skills") or []:
            if "version" not in s:
                match = live_skills.get((s.get("type"), s.get("skill_id")))
                if match and "version" in match:
                    s["version"] = match["version"]
        _roster_versions(desired.get("multiagent"), live.get("multiagent"))
        live_tools = live.get("tools") or []
        for i, t in enumerate(desired.get("tools") or []):
            if i < len(live_tools) and live_tools[i].get("type") == t.get("type"):
                _fill_tool_configs(t, live_tools[i])
    return desired


def pair_tool_configs(kind: str, live: JSON, desired: JSON) -> tuple[JSON, JSON]:
    """``live`` and ``desired`` (normalised) with a toolset's per-tool config that one side
    lists and the other leaves at the default (``normalize`` drops such a config) written
    out on that side too, with the default's values: so ``enabled: false`` changed to
    ``true`` diffs as ``configs[web_search].enabled: false -> true``, not as the config
    removed."""
    if kind != "agent":
        return live, desired
    live, desired = copy_json(live), copy_json(desired)
    live_tools, desired_tools = live.get("tools") or [], desired.get("tools") or []
    for one, other in zip(live_tools, desired_tools, strict=False):
        if one.get("type") != other.get("type") or one.get("type") not in TOOLSET_DEFAULT_POLICY:
            continue
        for tool, names in ((one, other), (other, one)):
            have = {c.get("name") for c in tool.get("configs") or []}
            default = tool.get("default_config") or {}
            added = [
                {
                    "name": c.get("name"),
                    "enabled": default.get("enabled"),
                    "permission_policy": default.get("permission_policy"),
                }
                for c in names.get("configs") or []
                if c.get("name") not in have
            ]
            if added:
                configs = [*(tool.get("configs") or []), *added]
                tool["configs"] = sorted(configs, key=lambda c: str(c.get("name")))
    return live, desired


def _fill_tool_configs(desired: JSON, live: JSON) -> None:
    """Extras of per-tool configs the manifest does not set take the live value."""
    live_cfgs = {c.get("name"): c for c in live.get("configs") or []}
    for c in desired.get("configs") or []:
        lc = live_cfgs.get(c.get("name"))
        if not lc:
            continue
        for k, v in lc.items():
            if k not in c and k not in ("name", "enabled", "permission_policy"):
                c[k] = v


def drop_paths(obj: JSON, paths: tuple[str, ...]) -> JSON:
    """A copy of ``obj`` without the dotted ``paths`` (``ignore_changes``)."""
    if not paths:
        return obj
    obj = copy.deepcopy(obj)
    for path in paths:
        parts = path.split(".")
        cur: Any = obj
        for p in parts[:-1]:
            cur = cur.get(p) if isinstance(cur, dict) else None
            if cur is None:
                break
        if isinstance(cur, dict):
            cur.pop(parts[-1], None)
    return obj

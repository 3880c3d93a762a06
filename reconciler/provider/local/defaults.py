"""The server defaults: what the provider stores and returns given what a client sent.

Pure functions over plain dicts: response normalisation (the defaults of omitted fields),
update merging, and the checks the provider makes on those fields while filling them in
(metadata limits, MCP wiring, writes to archived objects) - one job, so not split. The defaults here are the contract in docs/architecture.md ("Server defaults"),
which the engine's normaliser mirrors; change both together. Storage and HTTP live elsewhere.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, get_args

from . import anthropic_skills
from .errors import ApiError, bad_request
from .schemas import ToolName

CUSTOM_SKILL_LATEST = "1"
PACKAGE_MANAGERS = ("pip", "npm", "apt", "cargo", "gem", "go")
AGENT_CONTENT_FIELDS = (
    "name",
    "description",
    "system",
    "model",
    "tools",
    "mcp_servers",
    "skills",
    "execution_identity",
    "multiagent",
    "metadata",
)

# -- metadata ---------------------------------------------------------------------------


def check_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """Enforce the 16 pairs / key 64 / value 512 / strings-only limits.

    Raises:
        ApiError: 400 ``invalid_metadata``.
    """
    if len(metadata) > 16:
        raise bad_request("metadata may hold at most 16 pairs", "invalid_metadata")
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 64:
            raise bad_request("metadata keys must be 1-64 characters", "invalid_metadata")
        if not isinstance(value, str) or len(value) > 512:
            raise bad_request(
                f"metadata value of {key!r} must be a string of at most 512 characters",
                "invalid_metadata",
            )
    return dict(metadata)


def patch_metadata(
    stored: dict[str, str], patch: dict[str, Any] | None, *, empty_deletes: bool = False
) -> dict[str, str]:
    """Apply a metadata patch: strings upsert, null (and "" when ``empty_deletes``) delete."""
    if patch is None:
        return dict(stored)
    result = dict(stored)
    for key, value in patch.items():
        if value is None or (empty_deletes and value == ""):
            result.pop(key, None)
        else:
            result[key] = value
    return check_metadata(result)


def none_if_empty(value: str | None) -> str | None:
    return value or None


# -- agents -----------------------------------------------------------------------------


def normalise_model(sent: Any, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """Model string or object -> the response object; omitted effort keeps ``stored``'s."""
    config: dict[str, Any] = {"id": sent} if isinstance(sent, str) else dict(sent)
    if "effort" in config and config["effort"] is not None:
        effort = config["effort"]
        effort = {"type": effort} if isinstance(effort, str) else {"type": effort["type"]}
    elif "effort" not in config and stored is not None:
        effort = copy.deepcopy(stored.get("effort") or {"type": "high"})
    else:
        effort = {"type": "high"}
    return {
        "id": config["id"],
        "effort": effort,
        "inference_geo": config.get("inference_geo"),
        "speed": config.get("speed") or "standard",
    }


def _resolved_default(sent: dict[str, Any] | None, policy: str) -> dict[str, Any]:
    sent = sent or {}
    enabled = sent.get("enabled")
    pp = sent.get("permission_policy")
    return {
        "enabled": True if enabled is None else enabled,
        "permission_policy": pp if pp is not None else {"type": policy},
    }


def _resolved_config(sent: dict[str, Any], default: dict[str, Any], typed: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"name": sent["name"]}
    if typed:
        config["type"] = sent["name"]
    config["enabled"] = default["enabled"] if sent.get("enabled") is None else sent["enabled"]
    pp = sent.get("permission_policy")
    config["permission_policy"] = copy.deepcopy(
        pp if pp is not None else default["permission_policy"]
    )
    for key, value in sent.items():
        if key not in config:
            config[key] = value
    return config


#: the tools a ``server_tool_results`` filter may name
SERVER_TOOLS = frozenset({"web_search", "web_fetch"})


def check_url_sources(tools: list[dict[str, Any]]) -> None:
    """A web_fetch ``url_sources`` filter names tools of its kind: ``client_tool_results``
    the custom tools of the same ``tools`` array, ``server_tool_results`` web_search or
    web_fetch (the SDK's parameter docs)."""
    custom = {t["name"] for t in tools if t["type"] == "custom"}
    configs = [
        c for t in tools if t["type"] == "agent_toolset_20260401" for c in t.get("configs") or ()
    ]
    for config in configs:
        sources = config.get("url_sources") or {}
        if sources:
            for key, allowed, what in (
                ("client_tool_results", custom, "a custom tool of this agent"),
                ("server_tool_results", SERVER_TOOLS, "web_search or web_fetch"),
            ):
                for ref in (sources.get(key) or {}).get("tools") or ():
                    if ref["name"] not in allowed:
                        raise bad_request(
                            f"url_sources.{key} names {ref['name']!r}, which is not {what}"
                        )


#: the SDK: "Maximum of 256 tools across all toolsets allowed"
MAX_TOOLS = 256
BUILTIN_TOOLS = get_args(ToolName)


def _tool_count(tool: dict[str, Any]) -> int:
    """The tools one entry of ``tools`` brings: a custom tool one, the agent toolset all its
    built-in tools, an MCP toolset those it names (its server's others are not known here)."""
    if tool["type"] == "agent_toolset_20260401":
        return len(BUILTIN_TOOLS)
    if tool["type"] == "mcp_toolset":
        return len(tool.get("configs") or ())
    return 1


def normalise_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Fill toolset ``default_config`` and ``configs`` the way the API resolves them."""
    check_url_sources(tools or [])
    custom = [t["name"] for t in tools or () if t["type"] == "custom"]
    for i, name in enumerate(custom):
        if name in custom[:i]:  # the SDK: "Unique name for the tool"
            raise bad_request(f"custom tool {name!r} is declared twice; names are unique")
    if sum(t["type"] == "agent_toolset_20260401" for t in tools or ()) > 1:
        raise bad_request(
            "agent_toolset_20260401 is declared twice; its tools' names would clash"
            " (configure every built-in tool in one entry)"
        )
    counted = sum(_tool_count(t) for t in tools or ())
    if counted > MAX_TOOLS:
        raise bad_request(
            f"an agent has at most {MAX_TOOLS} tools across all toolsets; these declare"
            f" {counted} (the agent toolset counts its {len(BUILTIN_TOOLS)} tools)"
        )
    result = []
    for tool in tools or []:
        kind = tool["type"]
        if kind == "custom":
            result.append({k: tool[k] for k in ("type", "name", "description", "input_schema")})
            continue
        policy = "always_allow" if kind == "agent_toolset_20260401" else "always_ask"
        default = _resolved_default(tool.get("default_config"), policy)
        names = [c["name"] for c in tool.get("configs") or []]
        if len(names) != len(set(names)):
            raise bad_request(f"{kind} configs must name each tool at most once")
        configs = [
            _resolved_config(c, default, typed=kind == "agent_toolset_20260401")
            for c in tool.get("configs") or []
        ]
        out: dict[str, Any] = {"type": kind}
        if kind == "mcp_toolset":
            out["mcp_server_name"] = tool["mcp_server_name"]
        out["default_config"] = default
        out["configs"] = configs
        result.append(out)
    return result


#: ``resolve(skill_id, version or None) -> version id`` of a custom skill reference; raises
#: the 404 when the skill or the pinned version does not exist (``routes_skills``)
SkillResolver = Callable[[str, str | None], str]


def normalise_skills(
    skills: list[dict[str, Any]] | None, resolve_custom: SkillResolver | None = None
) -> list[dict[str, Any]]:
    result = []
    for skill in skills or []:
        version = skill.get("version")
        if skill["type"] == "anthropic":
            version = anthropic_skills.resolve(skill["skill_id"], version)
        elif resolve_custom is not None:
            version = resolve_custom(skill["skill_id"], version)
        elif version in (None, "latest"):
            version = CUSTOM_SKILL_LATEST
        result.append({"type": skill["type"], "skill_id": skill["skill_id"], "version": version})
    return result


def normalise_identity(identity: dict[str, Any] | None) -> dict[str, Any]:
    if not identity or identity.get("type") == "service_account":
        return {"type": "service_account"}
    return {"type": "aws_role", "role_arn": identity["role_arn"]}


def check_mcp_wiring(tools: list[dict[str, Any]], servers: list[dict[str, Any]]) -> None:
    """MCP server names are unique and every server is used by exactly one toolset."""
    names = [s["name"] for s in servers]
    if len(names) != len(set(names)):
        raise bad_request("mcp_servers names must be unique")
    referenced = [t["mcp_server_name"] for t in tools if t["type"] == "mcp_toolset"]
    for name in referenced:
        if name not in names:
            raise bad_request(f"mcp_toolset references unknown mcp server {name!r}")
    if len(referenced) != len(set(referenced)):
        raise bad_request("each mcp server may be referenced by only one mcp_toolset")
    for name in names:
        if name not in referenced:
            raise bad_request(f"mcp server {name!r} is not referenced by any mcp_toolset")


AgentResolver = Callable[[Any], dict[str, Any]]
"""Resolves a roster entry (id string or ``{type: agent, id, version?}``) to a reference."""

_MEMBER_DEFAULTS: dict[str, dict[str, Any]] = {
    "advisor": {"type": "disabled"},
    "subagents": {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []},
    "workflows": {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []},
}


def _member(entry: Any, resolve: AgentResolver) -> dict[str, Any]:
    """A roster or predefined entry: ``self`` is kept as such (the version it means is the
    one of the agent being written, resolved when rendered: ``shapes``), others resolved."""
    if isinstance(entry, dict) and entry.get("type") == "self":
        return {"type": "self"}
    return resolve(entry)


def _distinct(members: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Members name distinct agents (``self`` at most once), as the API requires."""
    seen: set[str] = set()
    for member in members:
        key = member.get("id") or member["type"] if member["type"] != "advisor" else None
        if key is None:
            continue
        if key in seen:
            what = "self" if key == "self" else f"agent {key}"
            raise bad_request(f"{where} names {what} more than once")
        seen.add(key)
    return members


def _normalise_member(
    name: str, sent: Any, stored: dict[str, Any] | None, resolve: AgentResolver
) -> dict[str, Any]:
    if sent is None:
        return copy.deepcopy(_MEMBER_DEFAULTS[name])
    if not isinstance(sent, dict) or sent.get("type") not in ("enabled", "disabled"):
        raise bad_request(f"multiagent.{name}.type must be enabled or disabled")
    if sent["type"] == "disabled":
        return {"type": "disabled"}
    base = stored if stored and stored.get("type") == "enabled" else None
    if name == "advisor":
        model = sent.get("model", (base or {}).get("model"))
        if not isinstance(model, str) or not model:
            raise bad_request("an enabled multiagent advisor needs a model")
        return {"type": "enabled", "model": model}
    inline = sent.get("inline_agents", (base or {}).get("inline_agents"))
    if inline is None:
        inline = {"type": "enabled"}
    if not isinstance(inline, dict) or inline.get("type") not in ("enabled", "disabled"):
        raise bad_request(f"multiagent.{name}.inline_agents.type must be enabled or disabled")
    if "predefined_agents" in sent:
        refs = sent["predefined_agents"] or []
        if not isinstance(refs, list) or len(refs) > 20:
            raise bad_request(f"multiagent.{name}.predefined_agents takes at most 20 agents")
        predefined = _distinct([_member(r, resolve) for r in refs], f"multiagent.{name}")
    else:
        predefined = copy.deepcopy((base or {}).get("predefined_agents", []))
    return {
        "type": "enabled",
        "inline_agents": {"type": inline["type"]},
        "predefined_agents": predefined,
    }


def normalise_multiagent(
    sent: dict[str, Any] | None, stored: dict[str, Any] | None, resolve: AgentResolver
) -> dict[str, Any] | None:
    """Resolve a multiagent config; ``multiagent_20261001`` merges onto a stored one."""
    if sent is None:
        return None
    kind = sent.get("type")
    if kind == "coordinator":
        roster = sent.get("agents")
        if not isinstance(roster, list) or not 1 <= len(roster) <= 20:
            raise bad_request("multiagent.agents must list 1-20 roster entries")
        agents = []
        for entry in roster:
            if isinstance(entry, dict) and entry.get("type") == "advisor":
                if not isinstance(entry.get("model"), str):
                    raise bad_request("an advisor roster entry needs a model")
                agents.append({"type": "advisor", "model": entry["model"]})
            else:
                agents.append(_member(entry, resolve))
        return {"type": "coordinator", "agents": _distinct(agents, "multiagent.agents")}
    if kind != "multiagent_20261001":
        raise bad_request("multiagent.type must be coordinator or multiagent_20261001")
    unknown = set(sent) - {"type", "advisor", "subagents", "workflows"}
    if unknown:
        raise bad_request(f"multiagent does not take {', '.join(sorted(unknown))}")
    merge = stored if stored and stored.get("type") == "multiagent_20261001" else None
    result: dict[str, Any] = {"type": "multiagent_20261001"}
    for name in ("advisor", "subagents", "workflows"):
        prior = (merge or {}).get(name)
        if name in sent:
            result[name] = _normalise_member(name, sent[name], prior, resolve)
        elif prior is not None:
            result[name] = copy.deepcopy(prior)
        else:
            result[name] = copy.deepcopy(_MEMBER_DEFAULTS[name])
    return result


def build_agent_fields(
    sent: dict[str, Any],
    stored: dict[str, Any] | None,
    resolve: AgentResolver,
    resolve_skill: SkillResolver | None = None,
) -> dict[str, Any]:
    """The agent's content fields after a create (``stored`` None) or an update."""
    base = stored or {}
    out: dict[str, Any] = {}
    for field in ("name", "model"):
        if field in sent and sent[field] is None:
            raise bad_request(f"{field} cannot be cleared")
    out["name"] = sent.get("name", base.get("name"))
    out["description"] = (
        none_if_empty(sent["description"]) if "description" in sent else base.get("description")
    )
    out["system"] = none_if_empty(sent["system"]) if "system" in sent else base.get("system")
    out["model"] = (
        normalise_model(sent["model"], base.get("model")) if "model" in sent else base["model"]
    )
    out["tools"] = normalise_tools(sent["tools"]) if "tools" in sent else base.get("tools", [])
    out["mcp_servers"] = (
        [{"type": "url", "name": s["name"], "url": s["url"]} for s in sent["mcp_servers"] or []]
        if "mcp_servers" in sent
        else base.get("mcp_servers", [])
    )
    out["skills"] = (
        normalise_skills(sent["skills"], resolve_skill)
        if "skills" in sent
        else base.get("skills", [])
    )
    out["execution_identity"] = (
        normalise_identity(sent["execution_identity"])
        if "execution_identity" in sent
        else base.get("execution_identity", {"type": "service_account"})
    )
    out["multiagent"] = (
        normalise_multiagent(sent["multiagent"], base.get("multiagent"), resolve)
        if "multiagent" in sent
        else base.get("multiagent")
    )
    if stored is None:
        out["metadata"] = check_metadata(sent.get("metadata") or {})
    else:
        out["metadata"] = patch_metadata(base.get("metadata", {}), sent.get("metadata"))
    check_mcp_wiring(out["tools"], out["mcp_servers"])
    return out


# -- environments -----------------------------------------------------------------------


def _networking(sent: dict[str, Any] | None, stored: dict[str, Any] | None) -> dict[str, Any]:
    if not sent or sent["type"] == "unrestricted":
        return {"type": "unrestricted"}
    base = stored if stored and stored.get("type") == "limited" else {}

    def pick(key: str, default: Any) -> Any:
        value = sent.get(key)
        return value if value is not None else base.get(key, default)

    return {
        "type": "limited",
        "allowed_hosts": list(pick("allowed_hosts", [])),
        "allow_mcp_servers": bool(pick("allow_mcp_servers", False)),
        "allow_package_managers": bool(pick("allow_package_managers", False)),
    }


def _packages(sent: dict[str, Any] | None) -> dict[str, Any]:
    sent = sent or {}
    out: dict[str, Any] = {"type": "packages"}
    for manager in PACKAGE_MANAGERS:
        out[manager] = list(sent.get(manager) or [])
    return out


def default_env_config() -> dict[str, Any]:
    return {"type": "cloud", "networking": {"type": "unrestricted"}, "packages": _packages(None)}


def build_env_config(sent: dict[str, Any] | None, stored: dict[str, Any] | None) -> dict[str, Any]:
    """Resolve an environment config; on update ``config.type`` is immutable.

    Raises:
        ApiError: 400 ``invalid_config_type_change`` or a packages/networking conflict.
    """
    if sent is None:
        return copy.deepcopy(stored) if stored is not None else default_env_config()
    if stored is not None and sent["type"] != stored["type"]:
        raise bad_request(
            f"config.type cannot change from {stored['type']} to {sent['type']}",
            "invalid_config_type_change",
        )
    if sent["type"] == "self_hosted":
        return {"type": "self_hosted"}
    base = stored or {}
    networking = (
        _networking(sent["networking"], base.get("networking"))
        if "networking" in sent
        else copy.deepcopy(base.get("networking") or {"type": "unrestricted"})
    )
    packages = (
        _packages(sent["packages"])
        if "packages" in sent
        else copy.deepcopy(base.get("packages") or _packages(None))
    )
    has_packages = any(packages[m] for m in PACKAGE_MANAGERS)
    if (
        networking["type"] == "limited"
        and has_packages
        and not networking["allow_package_managers"]
    ):
        raise bad_request("packages under limited networking require allow_package_managers: true")
    return {"type": "cloud", "networking": networking, "packages": packages}


def refuse_archived(kind: str, data: dict[str, Any], error_code: str | None = None) -> None:
    """Updates to archived objects are refused (400)."""
    if data.get("archived_at"):
        raise ApiError(
            400, f"{kind} {data['id']} is archived and cannot be changed", error_code=error_code
        )

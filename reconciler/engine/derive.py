"""Turn live objects into manifest documents, the way ``import`` writes them.

Pure: no I/O. ``derive_documents`` gets the unmanaged objects (``unmanaged.find_unmanaged``), the
credentials of the unmanaged vaults and the names already taken, and returns one manifest
document per resource (credentials inside their vault document) with:

- names slugified from the remote names, unique per kind; the remote name kept in the spec
  when the slug differs from it;
- the spec as wire create fields, minus what the server fills in by default (an empty list,
  a null description, the default execution identity, a toolset's default config...), so
  ``plan`` compares it with the live object and finds nothing to change;
- references by manifest name: a deployment names its agent (pinned to the version it runs
  now, ``{ref: coder, version: 3}``), environment and vaults; an agent names a custom skill
  that is managed or imported with it (``{ref: NAME}`` when it runs the skill's latest
  version, else ``{ref: NAME, version: ID}``);
- every credential secret as ``{from_env: VAULT_CREDENTIAL_FIELD}``: the provider never
  returns secrets, so the user sets those variables and the first apply writes them.

Each document's keys are in the canonical order ``reconciler fmt`` also writes
(``keyorder``).
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.keyorder import canonical
from reconciler.engine.normalize import PACKAGE_MANAGERS, TOOLSET_DEFAULT_POLICY
from reconciler.engine.unmanaged import Unmanaged
from reconciler.jsontypes import JSON
from reconciler.kinds import (
    KINDS,
    MANIFEST_KINDS,
    NAME_RE,
    TAG_KEYS,
    Kind,
    ManifestKind,
    address_of,
    credential_address,
    manifest_kind,
)
from reconciler.manifest.hosts import environment_host_problem, environment_hostname

#: Manifest ``kind:`` -> the file ``import --all-unmanaged`` writes its documents to.
KIND_FILES: dict[str, str] = {
    k.manifest: k.manifest_file for k in KINDS if k.manifest and k.manifest_file
}

MAX_NAME = 64


# --- names --------------------------------------------------------------------------------


#: Latin letters with no decomposition into an ASCII letter and marks (NFKD keeps them)
_LATIN = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "þ": "th"})


def slugify(text: str | None, fallback: str) -> str:
    """A manifest name from a remote name: ``"Code Reviewer (v2)"`` -> ``code-reviewer-v2``,
    accented letters as their ASCII letter (``"Überprüfer"`` -> ``uberprufer``)."""
    ascii_text = unicodedata.normalize("NFKD", (text or "").lower().translate(_LATIN))
    ascii_text = ascii_text.encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_text)
    slug = re.sub(r"-{2,}", "-", slug).strip("-_")[:MAX_NAME].strip("-_")
    return slug if slug and NAME_RE.match(slug) else fallback


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``... the first one not ``taken``."""
    return _unique(name, taken)


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = name[: MAX_NAME - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


def env_var_name(*parts: str) -> str:
    """``env_var_name("github", "mcp-token", "token") == "GITHUB_MCP_TOKEN_TOKEN"``."""
    text = "_".join(parts).upper()
    return re.sub(r"[^A-Z0-9]+", "_", text).strip("_") or "SECRET"


# --- the derived documents ----------------------------------------------------------------


@dataclass(frozen=True)
class ImportedResource:
    """One live object a derived document stands for (a vault document has its credentials)."""

    address: str
    kind: Kind
    remote_id: str
    parent_id: str | None = None
    #: deployments: agent address -> the version it runs now
    pins: Mapping[str, int] = field(default_factory=dict)
    #: agents: skill address -> the version it runs now (of skills named ``{ref: NAME}``)
    skills: Mapping[str, str] = field(default_factory=dict)
    #: fields to write with the ownership tags so that the live object matches its document
    #: (a credential without a display name gets its manifest name)
    fill: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportedDocument:
    """A manifest document derived from live objects, as plain data in canonical order."""

    kind: ManifestKind
    name: str
    data: JSON
    resources: tuple[ImportedResource, ...]
    #: addresses of other documents this one refers to (a deployment's agent, ...)
    refs: tuple[str, ...] = ()
    #: where the document says something other than the live object, and why (a sentence
    #: each): ``plan`` shows that difference as an update
    notes: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return address_of(MANIFEST_KINDS[self.kind], self.name)


@dataclass(frozen=True)
class SecretVariable:
    """An environment variable the user must set: ``address``'s secret at ``path``."""

    address: str
    path: str
    variable: str


@dataclass(frozen=True)
class Skipped:
    """A live object left out, and why."""

    kind: str
    remote_id: str
    reason: str
    #: what it uses that this project does not manage ("agent agent_01..."), when that is why
    unmanaged_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Derivation:
    documents: tuple[ImportedDocument, ...]
    secrets: tuple[SecretVariable, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    def by_kind(self, kind: str) -> tuple[ImportedDocument, ...]:
        return tuple(d for d in self.documents if d.kind == kind)


def _user_metadata(obj: JSON) -> JSON:
    md = obj.get("metadata") or {}
    return {k: v for k, v in md.items() if k not in TAG_KEYS}


def _put(spec: JSON, key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is what the server assumes when it is omitted."""
    if value is None or value == "" or value == [] or value == {}:
        return
    spec[key] = copy.deepcopy(value)


def _model(model: Any) -> Any:
    if not isinstance(model, dict):
        return model
    out: JSON = {"id": model.get("id")}
    effort = model.get("effort")
    if isinstance(effort, dict) and effort.get("type"):
        out["effort"] = effort["type"]  # the server's default is unknown: keep what is live
    elif isinstance(effort, str):
        out["effort"] = effort
    if model.get("inference_geo") is not None:
        out["inference_geo"] = model["inference_geo"]
    if model.get("speed") not in (None, "standard"):
        out["speed"] = model["speed"]
    return out["id"] if list(out) == ["id"] else out


def _tool(tool: JSON) -> JSON:
    ttype = tool.get("type")
    if ttype not in TOOLSET_DEFAULT_POLICY:
        return copy.deepcopy(tool)
    out: JSON = {"type": ttype}
    if tool.get("mcp_server_name") is not None:
        out["mcp_server_name"] = tool["mcp_server_name"]
    live_default = tool.get("default_config") or {}
    enabled = live_default.get("enabled", True) is not False
    policy = live_default.get("permission_policy") or TOOLSET_DEFAULT_POLICY[ttype]
    default: JSON = {}
    if not enabled:
        default["enabled"] = False
    if policy != TOOLSET_DEFAULT_POLICY[ttype]:
        default["permission_policy"] = copy.deepcopy(policy)
    if default:
        out["default_config"] = default
    configs: list[JSON] = []
    for cfg in tool.get("configs") or []:
        c: JSON = {"name": cfg.get("name")}
        if cfg.get("enabled") is not None and cfg["enabled"] != enabled:
            c["enabled"] = cfg["enabled"]
        if cfg.get("permission_policy") is not None and cfg["permission_policy"] != policy:
            c["permission_policy"] = copy.deepcopy(cfg["permission_policy"])
        for k, v in cfg.items():
            if k not in ("name", "type", "enabled", "permission_policy") and v is not None:
                c[k] = copy.deepcopy(v)
        if len(c) > 1:
            configs.append(c)
    if configs:
        out["configs"] = configs
    return out


def _skill_ref(skill: Any, names: _Names, latest: Mapping[str, str]) -> Any:
    """An agent's skill: a custom skill with a manifest name as ``{ref: NAME}`` (with the
    version it runs unless that is the latest), anything else in wire form."""
    if not isinstance(skill, dict) or skill.get("type") != "custom":
        return copy.deepcopy(skill)
    skill_id = str(skill.get("skill_id"))
    name = names.of("skill", skill_id)
    if name is None:
        return copy.deepcopy(skill)
    version = skill.get("version")
    if version is None or version == latest.get(skill_id):
        return {"ref": name}
    return {"ref": name, "version": version}


def running_skill_versions(agent: JSON) -> dict[str, str]:
    """Skill id -> the version the live ``agent`` runs, for each custom skill it has."""
    return {
        str(skill.get("skill_id")): str(skill["version"])
        for skill in agent.get("skills") or []
        if isinstance(skill, dict) and skill.get("type") == "custom" and skill.get("version")
    }


def _skill_versions(obj: JSON, names: _Names) -> dict[str, str]:
    """Skill address -> the version the live agent runs, for the skills it names by ref
    (the lockfile records them, as an apply does)."""
    out: dict[str, str] = {}
    for skill_id, version in running_skill_versions(obj).items():
        name = names.of("skill", skill_id)
        if name is not None:
            out[address_of("skill", name)] = version
    return out


def _agent_spec(
    obj: JSON, name: str, names: _Names | None = None, latest: Mapping[str, str] | None = None
) -> JSON:
    spec: JSON = {}
    if obj.get("name") != name:
        _put(spec, "name", obj.get("name"))
    spec["model"] = _model(obj.get("model"))
    _put(spec, "description", obj.get("description"))
    _put(spec, "system", obj.get("system"))
    _put(spec, "tools", [_tool(t) for t in obj.get("tools") or []])
    _put(spec, "mcp_servers", obj.get("mcp_servers"))
    skills = obj.get("skills")
    if names is not None and isinstance(skills, list):
        skills = [_skill_ref(s, names, latest or {}) for s in skills]
    _put(spec, "skills", skills)
    identity = obj.get("execution_identity")
    if identity and identity != {"type": "service_account"}:
        spec["execution_identity"] = copy.deepcopy(identity)
    _put(spec, "multiagent", obj.get("multiagent"))
    _put(spec, "metadata", _user_metadata(obj))
    return spec


def _environment_config(config: Any, notes: list[str]) -> JSON | None:
    if not isinstance(config, dict):
        return None
    if config.get("type") != "cloud":
        return {"type": config.get("type")}
    out: JSON = {"type": "cloud"}
    net = config.get("networking") or {}
    if net.get("type") == "limited":
        n: JSON = {"type": "limited"}
        _put(n, "allowed_hosts", _allowed_hosts(net.get("allowed_hosts"), notes))
        for flag in ("allow_mcp_servers", "allow_package_managers"):
            if net.get(flag):
                n[flag] = True
        out["networking"] = n
    packages = config.get("packages") or {}
    chosen = {m: list(packages[m]) for m in PACKAGE_MANAGERS if packages.get(m)}
    if chosen:
        out["packages"] = chosen
    return None if out == {"type": "cloud"} else out


def _allowed_hosts(hosts: Any, notes: list[str]) -> Any:
    """An Environment's live ``allowed_hosts`` as a manifest lists them: an entry the
    manifest refuses (a URL, a host with a port or path; the API took it) as the hostname
    it names, said in ``notes``; one that names no hostname as it is (validate says why)."""
    if not isinstance(hosts, list):
        return hosts
    out: list[Any] = []
    rewritten: list[str] = []
    for entry in hosts:
        host = environment_hostname(entry) if isinstance(entry, str) else None
        if host and environment_host_problem(host) is None:
            rewritten.append(f"{entry!r} -> {host}")
            entry = host
        if entry not in out:
            out.append(entry)
    if rewritten:
        notes.append(
            "the live config.networking.allowed_hosts holds URLs, written as the hostnames "
            f"a manifest takes (the domains the container may reach): {', '.join(rewritten)}; "
            "`reconciler plan` shows the update that sends them, and the live environment "
            "keeps its entries until that apply"
        )
    return out


def _environment_spec(obj: JSON, name: str, notes: list[str]) -> JSON:
    spec: JSON = {}
    if obj.get("name") != name:
        _put(spec, "name", obj.get("name"))
    _put(spec, "description", obj.get("description"))
    if obj.get("scope") not in (None, "organization"):
        spec["scope"] = obj["scope"]
    _put(spec, "config", _environment_config(obj.get("config"), notes))
    _put(spec, "metadata", _user_metadata(obj))
    return spec


def _secret(variables: list[SecretVariable], address: str, path: str, *parts: str) -> JSON:
    taken = {v.variable for v in variables}
    base = env_var_name(*parts)
    variable, n = base, 1
    while variable in taken:
        n += 1
        variable = f"{base}_{n}"
    variables.append(SecretVariable(address, path, variable))
    return {"from_env": variable}


def _auth(
    auth: JSON, address: str, vault: str, cred: str, variables: list[SecretVariable]
) -> JSON | None:
    """The manifest form of a live credential ``auth``; secrets as ``from_env`` placeholders."""
    atype = auth.get("type")

    def secret(path: str) -> JSON:
        return _secret(variables, address, path, vault, cred, path.rsplit(".", 1)[-1])

    if atype == "static_bearer":
        return {
            "type": atype,
            "mcp_server_url": auth.get("mcp_server_url"),
            "token": secret("auth.token"),
        }
    if atype == "mcp_oauth":
        out: JSON = {
            "type": atype,
            "mcp_server_url": auth.get("mcp_server_url"),
            "access_token": secret("auth.access_token"),
        }
        _put(out, "expires_at", auth.get("expires_at"))
        refresh = auth.get("refresh")
        if isinstance(refresh, dict):
            r: JSON = {
                "client_id": refresh.get("client_id"),
                "refresh_token": secret("auth.refresh.refresh_token"),
                "token_endpoint": refresh.get("token_endpoint"),
            }
            tea = refresh.get("token_endpoint_auth") or {"type": "none"}
            r["token_endpoint_auth"] = {"type": tea.get("type")}
            if tea.get("type") != "none":
                r["token_endpoint_auth"]["client_secret"] = secret(
                    "auth.refresh.token_endpoint_auth.client_secret"
                )
            _put(r, "resource", refresh.get("resource"))
            _put(r, "scope", refresh.get("scope"))
            out["refresh"] = r
        return out
    if atype == "environment_variable":
        out = {
            "type": atype,
            "secret_name": auth.get("secret_name"),
            "secret_value": secret("auth.secret_value"),
            "networking": _credential_networking(auth.get("networking")),
        }
        _put(out, "injection_location", auth.get("injection_location"))
        return out
    return None


def _credential_networking(net: Any) -> JSON:
    if isinstance(net, dict) and net.get("type") == "limited":
        return {"type": "limited", "allowed_hosts": list(net.get("allowed_hosts") or [])}
    return {"type": "unrestricted"}


def _schedule(schedule: Any) -> JSON | None:
    if not isinstance(schedule, dict):
        return None
    return {k: schedule[k] for k in ("type", "expression", "timezone") if k in schedule}


def _memory_store_spec(obj: JSON, name: str) -> JSON:
    """A memory store's spec; its memories are the agents' content, never imported."""
    spec: JSON = {}
    if obj.get("name") != name:
        _put(spec, "name", obj.get("name"))
    _put(spec, "description", obj.get("description") or None)
    _put(spec, "metadata", _user_metadata(obj))
    return spec


def _resources(resources: Any, names: _Names | None = None) -> list[JSON]:
    out: list[JSON] = []
    for r in resources or []:
        if r.get("type") == "memory_store":
            store = names.of("memory_store", r.get("memory_store_id")) if names else None
            mount: JSON = (
                {"memory_store": store}
                if store
                else {"type": "memory_store", "memory_store_id": r.get("memory_store_id")}
            )
            for key in ("access", "instructions"):
                if r.get(key) not in (None, ""):
                    mount[key] = r[key]
            out.append(mount)
            continue
        out.append(
            {
                k: copy.deepcopy(v)
                for k, v in r.items()
                if k != "authorization_token" and v is not None
            }
        )
    return out


class _Names:
    """Manifest names per kind: taken ones, and the name given to each remote id."""

    def __init__(self, taken: Mapping[str, Iterable[str]], known: Mapping[tuple[str, str], str]):
        self.taken = {k: set(v) for k, v in taken.items()}
        self.by_id: dict[tuple[str, str], str] = dict(known)

    def give(self, kind: str, remote_id: str, wanted: str) -> str:
        name = _unique(wanted, self.taken.setdefault(kind, set()))
        self.by_id[(kind, remote_id)] = name
        return name

    def of(self, kind: str, remote_id: Any) -> str | None:
        return self.by_id.get((kind, str(remote_id)))


def _wanted_name(u: Unmanaged) -> str:
    if u.tagged and u.duplicate_of is None:
        tail = u.tagged.split(".", 1)[-1]
        if NAME_RE.match(tail):
            return tail
    return slugify(u.remote_name, u.kind)


def derive_documents(
    unmanaged: Sequence[Unmanaged],
    credentials: Mapping[str, Sequence[JSON]],
    *,
    taken: Mapping[str, Iterable[str]] | None = None,
    known: Mapping[tuple[str, str], str] | None = None,
    skill_latest: Mapping[str, str] | None = None,
) -> Derivation:
    """Manifest documents for unmanaged live objects.

    Args:
        unmanaged: from ``find_unmanaged`` (duplicates of recorded addresses are skipped).
        credentials: vault id -> its live credentials, for the unmanaged vaults.
        taken: kind -> manifest names already used (existing manifests and lockfile).
        known: (kind, remote id) -> manifest name of resources already managed, so that a
            deployment can refer to an agent, environment, vault or memory store someone already
            manages
            (and an agent to a skill managed, or imported with it: ``("skill", id)``).
        skill_latest: skill id -> its latest version id: an agent running a known skill's
            latest version follows it (``{ref: NAME}``), any other version is pinned.

    Returns:
        The documents (sorted by kind and name), the secret variables to set, and what was
        left out with the reason.
    """
    names = _Names(taken or {}, known or {})
    skipped: list[Skipped] = []
    variables: list[SecretVariable] = []
    docs: list[ImportedDocument] = []
    ordered = sorted(
        (u for u in unmanaged), key=lambda u: (u.kind, u.remote_name or "", u.remote_id)
    )
    # skills are derived by ``app.skillimport``: their document comes with downloaded files
    top = [
        u
        for u in ordered
        if manifest_kind(u.kind) is not None and u.duplicate_of is None and u.kind != "skill"
    ]
    for u in ordered:
        if u.duplicate_of is not None:
            skipped.append(
                Skipped(u.kind, u.remote_id, f"a duplicate of {u.tagged} ({u.duplicate_of})")
            )
        elif u.kind == "credential":
            vault_id = str(u.obj.get("vault_id"))
            vault = names.of("vault", vault_id)
            where, address = (
                (f"vault.{vault} ({vault_id})", f"vault.{vault}")
                if vault is not None
                else (vault_id, "vault.VAULT")
            )
            skipped.append(
                Skipped(
                    u.kind,
                    u.remote_id,
                    f"it lives in the managed vault {where}: add it to that vault's "
                    f"credentials in its manifest, then `reconciler import "
                    f"{address}.credential.NAME {u.remote_id}`",
                )
            )
    for u in top:
        names.give(u.kind, u.remote_id, _wanted_name(u))
    for u in top:
        name = names.of(u.kind, u.remote_id)
        assert name is not None
        kind = manifest_kind(u.kind)
        assert kind is not None  # only manifest kinds are in top
        address = address_of(u.kind, name)
        resources = [ImportedResource(address, u.kind, u.remote_id)]
        refs: list[str] = []
        notes: list[str] = []
        if u.kind == "agent":
            spec = _agent_spec(u.obj, name, names, skill_latest or {})
            runs = _skill_versions(u.obj, names)
            resources = [ImportedResource(address, u.kind, u.remote_id, skills=runs)]
        elif u.kind == "environment":
            spec = _environment_spec(u.obj, name, notes)
        elif u.kind == "vault":
            spec, creds = _vault_spec(u, name, credentials.get(u.remote_id, ()), variables, skipped)
            resources += creds
        elif u.kind == "memory_store":
            spec = _memory_store_spec(u.obj, name)
        else:
            missing = _unmanaged_refs(u.obj, names)
            if missing:
                reason = (
                    f"it uses {', '.join(missing)}, which this project does not manage (not "
                    "imported yet, archived, or owned by another project)"
                )
                skipped.append(Skipped(u.kind, u.remote_id, reason, missing))
                continue
            spec, refs, pins = _deployment_spec(u.obj, name, names)
            resources = [ImportedResource(address, u.kind, u.remote_id, pins=pins)]
        data = canonical({"kind": kind, "name": name, "spec": spec})
        docs.append(ImportedDocument(kind, name, data, tuple(resources), tuple(refs), tuple(notes)))
    docs.sort(key=lambda d: (list(KIND_FILES).index(d.kind), d.name))
    return Derivation(tuple(docs), tuple(variables), tuple(skipped))


def _credential_label(cred: JSON) -> str | None:
    """What to name a credential after: its display name, else its key (the secret's
    variable name, or the MCP server's host)."""
    auth = cred.get("auth") or {}
    if cred.get("display_name"):
        return str(cred["display_name"])
    if auth.get("secret_name"):
        return str(auth["secret_name"])
    url = str(auth.get("mcp_server_url") or "")
    host = re.sub(r"^[a-z]+://", "", url).split("/")[0].split(":")[0]
    return host.replace(".", "-") or None


def _vault_spec(
    u: Unmanaged,
    name: str,
    creds: Sequence[JSON],
    variables: list[SecretVariable],
    skipped: list[Skipped],
) -> tuple[JSON, list[ImportedResource]]:
    spec: JSON = {}
    if u.obj.get("display_name") != name:
        _put(spec, "display_name", u.obj.get("display_name"))
    _put(spec, "metadata", _user_metadata(u.obj))
    taken: set[str] = set()
    entries: list[JSON] = []
    resources: list[ImportedResource] = []
    live = sorted(
        (c for c in creds if not c.get("archived_at")),
        key=lambda c: (str(c.get("display_name") or ""), str(c["id"])),
    )
    for cred in live:
        cname = _unique(slugify(_credential_label(cred), "credential"), taken)
        caddress = credential_address(name, cname)
        entry = _credential_item(cred, caddress, name, cname, variables)
        if entry is None:
            skipped.append(
                Skipped(
                    "credential",
                    str(cred["id"]),
                    f"unknown auth type {(cred.get('auth') or {}).get('type')!r}",
                )
            )
            continue
        entries.append(entry)
        fill = {"display_name": cname} if not cred.get("display_name") else {}
        resources.append(
            ImportedResource(
                caddress, "credential", str(cred["id"]), parent_id=u.remote_id, fill=fill
            )
        )
    _put(spec, "credentials", entries)
    return spec, resources


def credential_entry(cred: JSON, address: str) -> tuple[JSON, tuple[SecretVariable, ...]] | None:
    """The ``credentials`` item of a vault manifest that declares the live ``cred`` as
    ``address`` (``vault.V.credential.C``), its secrets as ``from_env`` placeholders, and
    those variables; None for an auth type the manifests cannot hold."""
    vault, name = address.removeprefix("vault.").split(".credential.", 1)
    variables: list[SecretVariable] = []
    entry = _credential_item(cred, address, vault, name, variables)
    return None if entry is None else (entry, tuple(variables))


def _credential_item(
    cred: JSON, address: str, vault: str, name: str, variables: list[SecretVariable]
) -> JSON | None:
    """The ``credentials`` item declaring ``cred`` as ``name`` (its secrets' variables added
    to ``variables``), or None for an auth type the manifests cannot hold."""
    auth = _auth(cred.get("auth") or {}, address, vault, name, variables)
    if auth is None:
        return None
    entry: JSON = {"name": name}
    if cred.get("display_name") not in (None, name):
        entry["display_name"] = cred["display_name"]
    _put(entry, "metadata", _user_metadata(cred))
    entry["auth"] = auth
    return entry


def _unmanaged_refs(obj: JSON, names: _Names) -> tuple[str, ...]:
    """What a live deployment uses that has no name here ("agent agent_01...", ...)."""
    uses = [("agent", (obj.get("agent") or {}).get("id"))]
    uses.append(("environment", obj.get("environment_id")))
    uses += [("vault", vid) for vid in obj.get("vault_ids") or []]
    return tuple(f"{kind} {rid}" for kind, rid in uses if names.of(kind, rid) is None)


def _deployment_spec(
    obj: JSON, name: str, names: _Names
) -> tuple[JSON, list[str], dict[str, int]]:
    """A deployment's spec, its references and its pins (``_unmanaged_refs`` found none)."""
    agent = obj.get("agent") or {}
    agent_name = names.of("agent", agent.get("id"))
    env_name = names.of("environment", obj.get("environment_id"))
    vaults = [names.of("vault", vid) for vid in obj.get("vault_ids") or []]
    spec: JSON = {}
    if obj.get("name") != name:
        _put(spec, "name", obj.get("name"))
    _put(spec, "description", obj.get("description"))
    pin: JSON = {"ref": agent_name}
    if agent.get("version") is not None:
        pin["version"] = int(agent["version"])
    spec["agent"] = pin
    spec["environment"] = env_name
    _put(spec, "vaults", vaults)
    _put(spec, "initial_events", obj.get("initial_events"))
    _put(spec, "resources", _resources(obj.get("resources"), names))
    _put(spec, "schedule", _schedule(obj.get("schedule")))
    _put(spec, "budget", obj.get("budget"))
    _put(spec, "metadata", _user_metadata(obj))
    refs = [f"agent.{agent_name}", f"environment.{env_name}"] + [f"vault.{v}" for v in vaults]
    refs += [
        f"memory_store.{r['memory_store']}"
        for r in spec.get("resources", ())
        if "memory_store" in r
    ]
    pins = {f"agent.{agent_name}": int(agent["version"])} if agent.get("version") else {}
    return spec, refs, pins


__all__ = [
    "KIND_FILES",
    "Derivation",
    "ImportedDocument",
    "ImportedResource",
    "SecretVariable",
    "Skipped",
    "credential_entry",
    "derive_documents",
    "env_var_name",
    "running_skill_versions",
    "slugify",
    "unique_name",
]

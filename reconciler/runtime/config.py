"""Runtime configuration: what agent, environment and session a ``ManagedRuntime`` creates.

Three frozen dataclasses mirror PraisonAI's ``ManagedConfig`` / ``PackagesConfig`` /
``NetworkingConfig`` (provider-wire.md §11.2), and each turns itself into the wire body of
provider-wire.md §4 with a ``to_wire`` method. Where PraisonAI and the wire differ, the wire
wins: limited networking defaults ``allow_mcp_servers`` and ``allow_package_managers`` to
False (§5.4, §11.4 item 7) and metadata values must be strings (§11.4 item 11). One default
is derived instead: packages under limited networking need ``allow_package_managers`` on the
wire, so a ``ManagedConfig`` with packages sends True unless the flag was set to False.

Invalid values fail at construction with ``ValueError``/``TypeError`` naming the field, before
anything is sent. This module does no I/O and knows nothing of the client.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from reconciler.jsontypes import JSON
from reconciler.kinds import TAG_KEYS, owner_of

__all__ = [
    "DEFAULT_TOOLS",
    "PACKAGE_MANAGERS",
    "ManagedConfig",
    "NetworkingConfig",
    "PackagesConfig",
]

#: The six package managers a cloud environment installs from (provider-wire.md §5.4).
PACKAGE_MANAGERS: tuple[str, ...] = ("pip", "npm", "apt", "cargo", "gem", "go")

#: The tool list a new agent gets unless the config names others: the full built-in toolset.
DEFAULT_TOOLS: tuple[JSON, ...] = ({"type": "agent_toolset_20260401"},)

NetworkingType = Literal["unrestricted", "limited"]
_NETWORKING_TYPES = ("unrestricted", "limited")


def _string_list(owner: str, name: str, value: Iterable[str] | None) -> tuple[str, ...] | None:
    """A defensive tuple copy of a list of strings (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{owner}.{name} must be a list of strings, not the string {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise TypeError(f"{owner}.{name} must hold non-empty strings; got {item!r}")
    return items


def _dict_list(owner: str, name: str, value: Iterable[Mapping[str, Any]]) -> tuple[JSON, ...]:
    """A deep tuple copy of a list of JSON objects, so later edits to the input cannot leak in."""
    if isinstance(value, (str, Mapping)):
        raise TypeError(f"{owner}.{name} must be a list of objects, got {type(value).__name__}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError(f"{owner}.{name} must hold objects (dicts); got {item!r}")
    return tuple(copy.deepcopy(dict(item)) for item in items)


def refuse_ownership_keys(
    owner: str, metadata: Mapping[str, Any], keys: Iterable[str] = TAG_KEYS
) -> None:
    """Refuse the ownership tags (``kinds.TAG_KEYS``) in metadata a program gives, as a
    manifest's metadata refuses them: the reconciler trusts them to find what it owns (a plan
    after a lost lockfile adopts what they name), so a program must not forge or break them.

    Args:
        keys: the keys refused (default: all three).

    Raises:
        ValueError: ``metadata`` has one of them; the message names it and ``owner``.
    """
    refused = tuple(keys)
    for key in metadata:
        if key in refused:
            raise ValueError(
                f"{owner} key {key!r} is reserved: the reconciler sets it to record "
                f"ownership ({', '.join(refused)}); remove it"
            )


def metadata_strings(
    owner: str, value: Mapping[str, Any] | None, keys: Iterable[str] = TAG_KEYS
) -> dict[str, str]:
    """Metadata as the wire wants it: string keys to string values.

    Numbers become their decimal text and booleans ``"true"``/``"false"``; anything else
    (None, lists, objects) is rejected, because the provider stores strings only.
    ``keys`` are the reserved keys refused (``refuse_ownership_keys``).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{owner}.metadata must be a mapping of strings, got {type(value).__name__}"
        )
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{owner}.metadata keys must be non-empty strings; got {key!r}")
        refuse_ownership_keys(f"{owner}.metadata", {key: item}, keys)
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, str):
            out[key] = item
        elif isinstance(item, (int, float)):
            out[key] = str(item)
        else:
            raise TypeError(
                f"{owner}.metadata[{key!r}] is {type(item).__name__} {item!r}; the provider "
                "stores metadata values as strings only - convert it (e.g. json.dumps) first"
            )
    return out


@dataclass(frozen=True)
class PackagesConfig:
    """Packages a cloud environment installs, by manager.

    Each field is a list of package specs in the manager's own syntax (``"pandas==2.2.0"``;
    unversioned = latest). Empty and omitted managers are left out of the wire body.

    Example:
        >>> PackagesConfig(pip=["pandas"], apt=["curl"]).to_wire()
        {'type': 'packages', 'pip': ['pandas'], 'apt': ['curl']}
    """

    pip: Sequence[str] | None = None
    npm: Sequence[str] | None = None
    apt: Sequence[str] | None = None
    cargo: Sequence[str] | None = None
    gem: Sequence[str] | None = None
    go: Sequence[str] | None = None

    def __post_init__(self) -> None:
        for manager in PACKAGE_MANAGERS:
            value = _string_list("PackagesConfig", manager, getattr(self, manager))
            object.__setattr__(self, manager, value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PackagesConfig:
        """Build from a wire-shaped dict (``type`` ignored; unknown managers rejected)."""
        extra = set(data) - set(PACKAGE_MANAGERS) - {"type"}
        if extra:
            raise ValueError(
                f"unknown package manager(s) {sorted(extra)}; "
                f"expected some of {', '.join(PACKAGE_MANAGERS)}"
            )
        return cls(**{k: v for k, v in data.items() if k != "type"})

    @property
    def is_empty(self) -> bool:
        """True when no manager has a package."""
        return not any(getattr(self, m) for m in PACKAGE_MANAGERS)

    def to_wire(self) -> JSON:
        """The ``config.packages`` object: ``type`` plus every non-empty manager list."""
        body: JSON = {"type": "packages"}
        for manager in PACKAGE_MANAGERS:
            value = getattr(self, manager)
            if value:
                body[manager] = list(value)
        return body


@dataclass(frozen=True)
class NetworkingConfig:
    """Outbound network policy of a cloud environment.

    ``unrestricted`` (the default) allows everything. ``limited`` allows only
    ``allowed_hosts``, plus MCP server hosts and package registries when the two flags say so;
    both default to False as on the wire, with one exception: ``allow_package_managers`` left
    unset (None) becomes True in a ``ManagedConfig`` that lists packages, because the provider
    refuses packages under limited networking without it. Only an explicit
    ``allow_package_managers=False`` with packages is refused.

    Example:
        >>> wire = NetworkingConfig("limited", allowed_hosts=["api.example.com"]).to_wire()
        >>> wire["allowed_hosts"], wire["allow_mcp_servers"], wire["allow_package_managers"]
        (['api.example.com'], False, False)
    """

    type: NetworkingType = "unrestricted"
    allowed_hosts: Sequence[str] | None = None
    allow_mcp_servers: bool = False
    #: None = not set: False on the wire, or True when the environment lists packages
    allow_package_managers: bool | None = None

    def __post_init__(self) -> None:
        if self.type not in _NETWORKING_TYPES:
            raise ValueError(
                f"NetworkingConfig.type must be 'unrestricted' or 'limited', got {self.type!r}"
            )
        hosts = _string_list("NetworkingConfig", "allowed_hosts", self.allowed_hosts)
        object.__setattr__(self, "allowed_hosts", hosts)
        if not isinstance(self.allow_mcp_servers, bool):
            raise TypeError("NetworkingConfig.allow_mcp_servers must be a bool")
        if not isinstance(self.allow_package_managers, (bool, type(None))):
            raise TypeError("NetworkingConfig.allow_package_managers must be a bool or None")
        if self.type == "unrestricted" and (
            hosts or self.allow_mcp_servers or self.allow_package_managers
        ):
            raise ValueError(
                "allowed_hosts, allow_mcp_servers and allow_package_managers apply only to "
                "NetworkingConfig(type='limited'); unrestricted networking already allows all"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkingConfig:
        """Build from a wire-shaped dict such as ``{"type": "limited", "allowed_hosts": [...]}``."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise ValueError(
                f"unknown networking field(s) {sorted(extra)}; expected {sorted(known)}"
            )
        return cls(**data)

    def to_wire(self) -> JSON:
        """The ``config.networking`` object; the three limits appear only for ``limited``."""
        if self.type == "unrestricted":
            return {"type": "unrestricted"}
        return {
            "type": "limited",
            "allowed_hosts": list(self.allowed_hosts or ()),
            "allow_mcp_servers": self.allow_mcp_servers,
            "allow_package_managers": bool(self.allow_package_managers),
        }


@dataclass(frozen=True)
class ManagedConfig:
    """Everything a ``ManagedRuntime`` needs to create an agent, an environment and sessions.

    Fields are best given by keyword. Lists are copied (to tuples) and metadata values
    converted to strings at construction, so a config is a value that cannot change later.

    Attributes:
        model: model id (``"claude-sonnet-4-6"``) or a wire model object ``{"id": ..., ...}``.
        system: the agent's system prompt (None = no system prompt).
        name: the agent's name.
        tools: wire tool objects; default the full built-in toolset.
        packages: environment packages (a ``PackagesConfig`` or its dict); None = none.
        networking: environment network policy (a ``NetworkingConfig`` or its dict). Under
            ``limited`` networking with packages, an unset ``allow_package_managers`` is sent
            as True (the provider requires it); an explicit False is a ``ValueError``.
        vault_ids: vaults attached to every session the runtime creates.
        metadata: agent metadata; values must be strings (numbers and booleans are converted).
            The ownership keys ``managed-by``, ``reconciler-project`` and
            ``reconciler-address`` are reserved for the reconciler (a ``ValueError``).
        env_name: the environment's name; unique among active environments on the provider.
        session_title: title of new sessions (None = untitled).
        description: agent description ("" = none).
        mcp_servers: wire MCP server objects ``{"type": "url", "name", "url"}``.
        skills: wire skill objects ``{"type": "anthropic", "skill_id": "xlsx"}``.
        resources: wire session resources mounted into every new session.

    Example:
        >>> cfg = ManagedConfig(model="claude-sonnet-4-6", name="coder",
        ...                     packages=PackagesConfig(pip=["pandas"]),
        ...                     networking=NetworkingConfig("limited", ["pypi.org"]))
        >>> cfg.environment_body()["config"]["networking"]["allow_package_managers"]
        True
    """

    model: str | Mapping[str, Any] = "claude-haiku-4-5"
    system: str | None = "You are a helpful coding assistant."
    name: str = "Agent"
    tools: Sequence[Mapping[str, Any]] = DEFAULT_TOOLS
    packages: PackagesConfig | Mapping[str, Any] | None = None
    networking: NetworkingConfig | Mapping[str, Any] = field(default_factory=NetworkingConfig)
    vault_ids: Sequence[str] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    env_name: str = "reconciler-env"
    session_title: str | None = "reconciler session"
    description: str = ""
    mcp_servers: Sequence[Mapping[str, Any]] = ()
    skills: Sequence[Mapping[str, Any]] = ()
    resources: Sequence[Mapping[str, Any]] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.model, Mapping):
            if not isinstance(self.model.get("id"), str) or not self.model.get("id"):
                raise ValueError("ManagedConfig.model as an object needs a non-empty 'id'")
            set_(self, "model", copy.deepcopy(dict(self.model)))
        elif not isinstance(self.model, str) or not self.model:
            raise TypeError("ManagedConfig.model must be a model id string or a model object")
        for text in ("name", "env_name"):
            if not isinstance(getattr(self, text), str) or not getattr(self, text):
                raise ValueError(f"ManagedConfig.{text} must be a non-empty string")
        for list_field in ("tools", "mcp_servers", "skills", "resources"):
            set_(
                self, list_field, _dict_list("ManagedConfig", list_field, getattr(self, list_field))
            )
        if isinstance(self.packages, Mapping):
            set_(self, "packages", PackagesConfig.from_dict(self.packages))
        elif self.packages is not None and not isinstance(self.packages, PackagesConfig):
            raise TypeError("ManagedConfig.packages must be a PackagesConfig, a dict or None")
        if self.networking is None:
            set_(self, "networking", NetworkingConfig())
        elif isinstance(self.networking, Mapping):
            set_(self, "networking", NetworkingConfig.from_dict(self.networking))
        elif not isinstance(self.networking, NetworkingConfig):
            raise TypeError("ManagedConfig.networking must be a NetworkingConfig or a dict")
        set_(self, "vault_ids", _string_list("ManagedConfig", "vault_ids", self.vault_ids) or ())
        set_(self, "metadata", metadata_strings("ManagedConfig", self.metadata))
        networking, packages = self.networking_config, self.packages_config
        if networking.type == "limited" and packages is not None and not packages.is_empty:
            if networking.allow_package_managers is None:
                # the wire requires it with packages; not setting it means "as needed"
                set_(self, "networking", replace(networking, allow_package_managers=True))
            elif not networking.allow_package_managers:
                raise ValueError(
                    "packages under limited networking need allow_package_managers=True "
                    "(the environment could not reach the package registries otherwise); "
                    "leave it unset or set it to True"
                )

    @property
    def networking_config(self) -> NetworkingConfig:
        """``networking`` as a ``NetworkingConfig`` (dicts are converted at construction)."""
        assert isinstance(self.networking, NetworkingConfig)
        return self.networking

    @property
    def packages_config(self) -> PackagesConfig | None:
        """``packages`` as a ``PackagesConfig`` or None."""
        assert self.packages is None or isinstance(self.packages, PackagesConfig)
        return self.packages

    def agent_body(self) -> JSON:
        """The ``POST /v1/agents`` body; optional lists are sent only when non-empty."""
        body: JSON = {
            "name": self.name,
            "model": copy.deepcopy(self.model),
            "tools": [copy.deepcopy(t) for t in self.tools],
        }
        if self.system is not None:
            body["system"] = self.system
        if self.description:
            body["description"] = self.description
        if self.mcp_servers:
            body["mcp_servers"] = [copy.deepcopy(s) for s in self.mcp_servers]
        if self.skills:
            body["skills"] = [copy.deepcopy(s) for s in self.skills]
        if self.metadata:
            body["metadata"] = dict(self.metadata)
        return body

    def environment_body(self) -> JSON:
        """The ``POST /v1/environments`` body: a cloud config with networking and packages."""
        config: JSON = {"type": "cloud", "networking": self.networking_config.to_wire()}
        packages = self.packages_config
        if packages is not None:
            config["packages"] = packages.to_wire()
        return {"name": self.env_name, "config": config}

    def to_wire(self) -> JSON:
        """Both bodies at once: ``{"agent": {...}, "environment": {...}}`` (for display)."""
        return {"agent": self.agent_body(), "environment": self.environment_body()}


def _comparable_config(config: Mapping[str, Any]) -> JSON:
    """An environment ``config`` with the server's fill-ins and list order taken out."""
    networking = config.get("networking") or {"type": "unrestricted"}
    net: JSON = {"type": networking.get("type")}
    if net["type"] == "limited":
        net["allowed_hosts"] = sorted(networking.get("allowed_hosts") or ())
        net["allow_mcp_servers"] = bool(networking.get("allow_mcp_servers"))
        net["allow_package_managers"] = bool(networking.get("allow_package_managers"))
    packages = config.get("packages") or {}
    return {
        "type": config.get("type", "cloud"),
        "networking": net,
        "packages": {m: list(packages[m]) for m in PACKAGE_MANAGERS if packages.get(m)},
    }


def environment_differences(wanted: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """What differs between a wanted environment ``config`` and a live one, as field names.

    Example:
        >>> environment_differences({"type": "cloud", "networking": {"type": "unrestricted"}},
        ...                         {"type": "cloud", "networking": {"type": "unrestricted"},
        ...                          "packages": {"pip": ["x"], "npm": []}})
        ['packages']
    """
    a, b = _comparable_config(wanted), _comparable_config(live)
    return [key for key in ("type", "networking", "packages") if a[key] != b[key]]


def reuse_refused(env: JSON, differences: Sequence[str]) -> str:
    """Why ``create_environment`` does not reuse ``env``, the active environment of the
    config's name, which differs from the config in ``differences``; and what to do."""
    owner = owner_of(env)
    if owner is not None and owner.address:
        # archiving it would break what `reconciler apply` runs in it
        what_to_do = (
            f"`reconciler apply` manages it as {owner.address} (project {owner.project}): use "
            f"runtime.environment({owner.address.split('.', 1)[-1]!r}) for its id (or pass "
            "reuse=True), or give the config another env_name"
        )
    else:
        what_to_do = (
            "give the config another env_name, archive that environment, or pass reuse=True "
            "to use it as it is"
        )
    return (
        f"environment {env.get('name')!r} ({env['id']}) exists, but its "
        f"{' and '.join(differences)} {'setting differs' if len(differences) == 1 else 'settings differ'} from "
        f"this config's; {what_to_do}"
    )

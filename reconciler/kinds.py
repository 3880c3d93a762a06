"""The vocabulary every layer shares: kinds, addresses, ownership tags, the name pattern.

Each concept is defined here once, beneath all the layers (docs/architecture.md "How to add
a kind"): this module imports nothing from ``reconciler``, does no I/O and holds only data
and small pure functions. The local provider (``reconciler.provider.local``) keeps its own
copies so it can be pulled out; ``tests/test_kinds.py`` checks that they agree.

- A **kind** has one entry in ``KINDS``: its address prefix (``agent``), its manifest
  ``kind:`` (``Agent``, none for credentials, which live inside a vault document), its wire id
  prefix and object type, its place in dependency order, and what the provider can do with it.
- An **address** names a resource of a project: ``agent.coder``,
  ``vault.github.credential.token``. ``Address`` parses and prints one; the plan, the
  lockfile and the JSON formats carry addresses as plain strings.
- The **ownership tags** are the three metadata keys the reconciler writes on everything it
  creates (DESIGN "Ownership"); ``tags`` writes them, ``owner_of`` reads them.
- The **default paths** of a checkout: manifests, lockfile, the embedded provider's database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

#: Address prefix of each kind (the engine's, the lockfile's and the adapter's name for it).
Kind = Literal["agent", "environment", "vault", "credential", "deployment", "memory_store", "skill"]
#: The ``kind:`` of a manifest document.
ManifestKind = Literal["Agent", "Environment", "Vault", "Deployment", "MemoryStore", "Skill"]


@dataclass(frozen=True)
class KindInfo:
    """What the reconciler knows about one kind.

    Attributes:
        kind: address prefix, e.g. ``agent`` in ``agent.coder``.
        manifest: the manifest ``kind:`` that declares it; None when it is declared inside
            another document (credentials inside their vault).
        manifest_file: the file ``import --all-unmanaged`` writes its documents to.
        id_prefix: the start of its wire ids (provider-wire.md §13), e.g. ``env_``.
        wire_type: the ``type`` field of its wire object.
        order: place in dependency order: a kind only references kinds of a lower order.
        parent: the kind it lives inside (its list and writes need the parent's id).
        can_archive / can_delete: what the provider offers besides create and update.
        has_versions: updates make numbered versions that deployments pin.
        has_metadata: carries a metadata map (where the ownership tags go).
        name_field: the wire field that holds its remote name (``display_name`` for vaults
            and credentials, ``name`` for the rest).
    """

    kind: Kind
    manifest: ManifestKind | None
    manifest_file: str | None
    id_prefix: str
    wire_type: str
    order: int
    parent: Kind | None = None
    can_archive: bool = True
    can_delete: bool = False
    has_versions: bool = False
    has_metadata: bool = True
    name_field: Literal["name", "display_name"] = "name"


#: Every kind, in declaration order (the order of listings, messages and import files).
KINDS: Final[tuple[KindInfo, ...]] = (
    KindInfo("agent", "Agent", "agents.yaml", "agent_", "agent", 3, has_versions=True),
    KindInfo("environment", "Environment", "environments.yaml", "env_", "environment", 0,
             can_delete=True),
    KindInfo("vault", "Vault", "vaults.yaml", "vlt_", "vault", 1, can_delete=True,
             name_field="display_name"),
    KindInfo("credential", None, None, "vcrd_", "vault_credential", 2, parent="vault",
             can_delete=True, name_field="display_name"),
    KindInfo("deployment", "Deployment", "deployments.yaml", "depl_", "deployment", 4),
    KindInfo("memory_store", "MemoryStore", "memory_stores.yaml", "memstore_", "memory_store", 0,
             can_delete=True),
    # no metadata (ownership lives in the lockfile), no update, no archive: new versions
    # are uploads (``manifest/skill.py``), removal is a delete
    KindInfo("skill", "Skill", "skills.yaml", "skill_", "skill", 0, can_archive=False,
             can_delete=True, has_metadata=False, name_field="display_name"),
)  # fmt: skip

#: ``kind`` -> its entry.
KIND_INFO: Final[dict[str, KindInfo]] = {k.kind: k for k in KINDS}
#: Every kind name, in declaration order.
KIND_NAMES: Final[tuple[Kind, ...]] = tuple(k.kind for k in KINDS)
#: Kinds in dependency order: a kind only references kinds before it.
KIND_ORDER: Final[tuple[Kind, ...]] = tuple(k.kind for k in sorted(KINDS, key=lambda k: k.order))
#: Kinds listed on their own (the rest are listed inside their parent).
TOP_LEVEL_KINDS: Final[tuple[Kind, ...]] = tuple(k.kind for k in KINDS if k.parent is None)
#: Manifest ``kind:`` -> kind, in declaration order.
MANIFEST_KINDS: Final[dict[ManifestKind, Kind]] = {
    k.manifest: k.kind for k in KINDS if k.manifest is not None
}
#: ``kind`` -> the start of its wire ids.
ID_PREFIXES: Final[dict[str, str]] = {k.kind: k.id_prefix for k in KINDS}
#: ``kind`` -> the ``type`` of its wire object.
WIRE_TYPES: Final[dict[str, str]] = {k.kind: k.wire_type for k in KINDS}
#: Kinds the provider can delete (the rest can only be archived).
DELETABLE_KINDS: Final[frozenset[str]] = frozenset(k.kind for k in KINDS if k.can_delete)


def manifest_kind(kind: str) -> ManifestKind | None:
    """The manifest ``kind:`` of a kind: ``manifest_kind("agent") == "Agent"``; None for a
    credential or an unknown kind."""
    info = KIND_INFO.get(kind)
    return info.manifest if info is not None else None


def noun(kind: str) -> str:
    """How messages name a kind, given as a kind or a manifest ``kind:``:
    ``noun("memory_store") == noun("MemoryStore") == "memory store"``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", kind).replace("_", " ").lower()


def remote_name_of(kind: str, obj: dict[str, Any]) -> str | None:
    """The remote name in a wire object (or a manifest spec) of ``kind``: its ``name``, or
    its ``display_name`` for a vault or a credential; None when it has none."""
    name = obj.get(KIND_INFO[kind].name_field)
    return None if name is None else str(name)


# --- default paths (relative to the working directory) ------------------------------------

DEFAULT_MANIFESTS: Final = "manifests"
DEFAULT_LOCKFILE: Final = "state/reconciler.lock"
#: The embedded local provider's database, unless ``--provider-db`` says otherwise.
DEFAULT_PROVIDER_DB: Final = ".reconciler/provider.db"


# --- the name pattern ---------------------------------------------------------------------

#: A manifest name: 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit.
NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NAME_RE: Final = re.compile(NAME_PATTERN)


# --- addresses ----------------------------------------------------------------------------

_CREDENTIAL = ".credential."


@dataclass(frozen=True)
class Address:
    """The address of one resource: ``agent.coder`` or ``vault.github.credential.token``.

    Example::

        >>> Address.parse("vault.github.credential.token")
        Address(kind='credential', name='token', vault='github')
        >>> str(Address("agent", "coder"))
        'agent.coder'
    """

    kind: Kind
    name: str
    #: the vault's name, for a credential
    vault: str | None = None

    def __str__(self) -> str:
        if self.kind == "credential":
            return f"vault.{self.vault}{_CREDENTIAL}{self.name}"
        return f"{self.kind}.{self.name}"

    @property
    def parent(self) -> Address | None:
        """The vault of a credential; None for every other kind."""
        return Address("vault", self.vault) if self.vault is not None else None

    @classmethod
    def parse(cls, text: str) -> Address:
        """The address ``text`` spells, names checked against ``NAME_PATTERN``.

        Raises:
            ValueError: ``text`` is not ``KIND.NAME`` or ``vault.V.credential.C``.
        """
        parts = text.split(".")
        if len(parts) == 4 and parts[0] == "vault" and parts[2] == "credential":
            address = cls("credential", parts[3], vault=parts[1])
            names = [parts[1], parts[3]]
        elif len(parts) == 2 and parts[0] in TOP_LEVEL_KINDS:
            address = cls(KIND_INFO[parts[0]].kind, parts[1])
            names = [parts[1]]
        else:
            raise ValueError(f"not an address: {text!r}")
        if not all(NAME_RE.match(n) for n in names):
            raise ValueError(f"not an address: {text!r}")
        return address


def address_of(kind: str, name: str) -> str:
    """``address_of("agent", "coder") == "agent.coder"``."""
    return f"{kind}.{name}"


def credential_address(vault_name: str, credential_name: str) -> str:
    """The address of a vault's credential, e.g. ``vault.github.credential.token``."""
    return str(Address("credential", credential_name, vault=vault_name))


def kind_of(address: str) -> Kind:
    """The kind of an address; credentials are ``vault.V.credential.C``.

    Lenient about the rest, so a twin's action address (``agent.coder[agent_01...]``) has a
    kind too.

    Raises:
        ValueError: the address starts with no kind.
    """
    parts = address.split(".")
    if len(parts) >= 4 and parts[0] == "vault" and parts[-2] == "credential":
        return "credential"
    if parts[0] not in TOP_LEVEL_KINDS:
        raise ValueError(f"not an address: {address!r}")
    return KIND_INFO[parts[0]].kind


# --- ownership tags -----------------------------------------------------------------------

OWNER_KEY: Final = "managed-by"
OWNER_VALUE: Final = "reconciler"
PROJECT_KEY: Final = "reconciler-project"
ADDRESS_KEY: Final = "reconciler-address"
#: The metadata keys the reconciler writes on every resource it creates; manifests may not.
TAG_KEYS: Final[tuple[str, ...]] = (OWNER_KEY, PROJECT_KEY, ADDRESS_KEY)
#: Session metadata of a rollout check apply runs: the deployment, the candidate
#: (``agent.NAME@VERSION``); an apply archives the check sessions a killed one left behind.
CHECK_KEY: Final = "reconciler-check"
CANDIDATE_KEY: Final = "reconciler-candidate"
#: Session metadata of a rollout record (an archived session apply leaves): the deployment
#: and the record, which a plan after a lost lockfile reads back.
ROLLOUT_KEY: Final = "reconciler-rollout"
RECORD_KEY: Final = "reconciler-record"
#: The keys of the sessions apply runs itself: the reconciler acts on what they say.
APPLY_SESSION_KEYS: Final[tuple[str, ...]] = (CHECK_KEY, CANDIDATE_KEY, ROLLOUT_KEY, RECORD_KEY)


@dataclass(frozen=True, slots=True)
class Owner:
    """What a live object's ownership tags say: the project, and the address it is for
    (either may be missing on an object someone edited by hand)."""

    project: str | None
    address: str | None


def tags(project: str, address: str) -> dict[str, str]:
    """The ownership tags of ``address`` in ``project``, to merge into its metadata."""
    return {OWNER_KEY: OWNER_VALUE, PROJECT_KEY: project, ADDRESS_KEY: address}


def owner_of(obj: dict[str, Any]) -> Owner | None:
    """The owner a live wire object's tags name; None when it has no ``managed-by`` tag."""
    md = obj.get("metadata") or {}
    if md.get(OWNER_KEY) != OWNER_VALUE:
        return None
    return Owner(md.get(PROJECT_KEY), md.get(ADDRESS_KEY))


def owned_address(obj: dict[str, Any], project: str) -> str | None:
    """The address ``obj`` is tagged for, when ``project`` owns it; else None."""
    # called for every listed object of a plan (10,000s): read the tags without an Owner
    md = obj.get("metadata") or {}
    if md.get(OWNER_KEY) == OWNER_VALUE and md.get(PROJECT_KEY) == project:
        return md.get(ADDRESS_KEY)
    return None


def other_manager(obj: dict[str, Any]) -> str | None:
    """The other tool a live object's ``managed-by`` names (``terraform``): not ours, nor
    nobody's; None when it names the reconciler or nothing."""
    manager = (obj.get("metadata") or {}).get(OWNER_KEY)
    if isinstance(manager, str) and manager.strip() and manager != OWNER_VALUE:
        return manager
    return None


#: metadata keys the provider keeps on one object; the ownership tags take ``TAG_KEYS``
MAX_METADATA_KEYS: Final = 16


def keys_without_room(obj: dict[str, Any]) -> tuple[int, int]:
    """(metadata keys of a live object besides the ownership tags, how many of them must go
    before the tags fit): ``(15, 2)`` for 15 keys of its own; the second is 0 when they fit."""
    own = [k for k in obj.get("metadata") or {} if k not in TAG_KEYS]
    return len(own), max(0, len(own) + len(TAG_KEYS) - MAX_METADATA_KEYS)

"""Who owns a live object, and which live objects claim one address. Pure: no I/O.

Ownership is proven by the live object's tags (``managed-by``, ``reconciler-project``,
``reconciler-address``), never assumed from the lockfile: a bad merge can point an entry at
anyone's object. The planner asks ``owner_problem`` before it plans an update or an archive
of a recorded object, and turns a problem into a ``Conflict`` (no action at all); it asks
``find_twins`` for second live objects tagged for an address it manages (two checkouts that
applied at once without a shared lock), which it reports, and archives with ``--prune`` as
``twin_address(address, id)`` so the address keeps its own action.

A skill carries no metadata: ownership is its lockfile entry (its id and the versions this
project uploaded), so the checks here hold it to be ours wherever an entry names it, and a
lost entry is found again by the skill's slug (``engine.skills``).

A credential belongs to its vault: it cannot move to another vault, and archiving the vault
takes it along. So a credential is ours when its vault is ours (tagged for the credential's
parent address) and its own tags, if it carries reconciler tags at all, agree.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.engine.model import Archive, Conflict, Twin
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_INFO, Kind, kind_of, other_manager, owned_address, owner_of
from reconciler.state import Lockfile


def describe_owner(obj: JSON) -> str:
    """Whose an object is, by its tags, as a phrase: ``project "web" (as agent.coder)`` or
    ``nobody (no reconciler ownership tags)``."""
    owner = owner_of(obj)
    manager = other_manager(obj)
    if manager is not None:
        return f"{manager} (its managed-by metadata)"
    if owner is None or not owner.project:
        return "nobody (no reconciler ownership tags)"
    address = owner.address
    return f'project "{owner.project}"' + (f" (as {address})" if address else "")


def not_ours(kind: str, obj: JSON, project: str, address: str) -> str | None:
    """None when ``obj`` carries this project's tags for ``address``; else whose it is.

    A credential is judged by its own tags only when it carries reconciler tags: it lives
    and dies with its vault (it cannot move to another one, and archiving the vault takes it
    along), so an untagged credential belongs to whoever owns its vault, which the caller
    checks. A kind without metadata (a skill) carries no tags at all: its lockfile entry is
    its ownership (the caller's entry names it), so it is judged ours. Every other kind must
    carry the tags: the lockfile alone never proves ownership.
    """
    if not KIND_INFO[kind].has_metadata:
        return None
    tagged = owned_address(obj, project)
    if tagged == address:
        return None
    if kind == "credential" and owner_of(obj) is None:
        return None
    if tagged is not None:
        return f"this project, as {tagged}"
    return describe_owner(obj)


def name_taken_remedy(address: str, holder: JSON, project: str) -> str:
    """What to do about a live environment that holds the name ``address`` would be
    created with (names are unique in the workspace): import it, or rename; when another
    project owns it, only renaming is friendly (``import --force`` would take it from them).
    """
    owner = owner_of(holder)
    rid = holder.get("id")
    if owner is not None and owner.project not in (None, "", project):
        return (
            f"Environment names are unique in the workspace: give {address} another name "
            f"(spec.name); `reconciler import --force {address} {rid}` would take it from "
            "that project"
        )
    if other_manager(holder) is not None:
        return (
            f"Environment names are unique in the workspace: give {address} another name "
            f"(spec.name); `reconciler import --force {address} {rid}` would take it from "
            f"{other_manager(holder)}"
        )
    return (
        f"`reconciler import {address} {rid}` manages it from now on, or give {address} "
        "another name"
    )


def key_taken_remedy(address: str, holder: JSON, project: str) -> str:
    """What to do about a live credential that holds the key (MCP server URL or secret
    name) the credential ``address`` would be created with (one active credential per key
    in a vault): this project's own under another address is most often the same
    credential renamed in the manifest, which ``state mv`` renames; else import it."""
    tagged = owned_address(holder, project)
    if tagged is not None and tagged != address:
        return (
            f"If it is the same credential renamed, `reconciler state mv {tagged} {address}` "
            "renames it (the next apply retags it); else `--prune` archives it before this "
            "create"
        )
    force = " --force" if other_manager(holder) is not None else ""
    return (
        f"`reconciler import{force} {address} {holder.get('id')}` manages it from now on, or "
        "remove it from the vault"
    )


def owner_problem(
    kind: str, obj: JSON, project: str, address: str, vaults: Mapping[str, JSON]
) -> str | None:
    """None when ``obj`` is this project's object for ``address``; else whose it is.

    Args:
        kind: the kind of ``obj``.
        obj: the live object.
        project: this project.
        address: the address that claims it (a lockfile entry's).
        vaults: live vaults by id (a credential is judged by its vault).

    Example: another project's agent gives ``'project "web" (as agent.helper)'``.
    """
    owner = not_ours(kind, obj, project, address)
    if owner is not None or kind != "credential":
        return owner
    vault_id = str(obj.get("vault_id"))
    vault = vaults.get(vault_id)
    if vault is None:
        return f"an unknown vault {vault_id}"
    vault_owner = not_ours("vault", vault, project, address.split(".credential.")[0])
    return None if vault_owner is None else f"the owner of its vault {vault_id}: {vault_owner}"


def conflict(kind: Kind, address: str, obj: JSON, owner: str) -> Conflict:
    """The plan's report of a recorded object that is not ours, with both remedies."""
    rid = str(obj["id"])
    return Conflict(
        address=address,
        kind=kind,
        remote_id=rid,
        owner=owner,
        message=(
            f"the lockfile records {kind} {rid} for {address}, but it belongs to {owner}; "
            f"it is never changed or archived. `reconciler state rm {address}` forgets the "
            f"entry (a wrong entry, e.g. from a bad merge), or `reconciler import --force "
            f"{address} {rid}` takes the object over"
        ),
    )


def twin_address(address: str, remote_id: str) -> str:
    """The address of a twin's archive action: ``agent.coder[agent_01...]``.

    A plan has one action per address, and the address keeps its own action (for the object
    the plan manages); the twin is named by its id beside it.
    """
    return f"{address}[{remote_id}]"


def claimed_address(address: str) -> str:
    """The address an action's object must be tagged for: ``agent.coder[agent_01]`` (a
    twin's archive) claims ``agent.coder``; any other address claims itself."""
    return address.split("[", 1)[0]


def find_twins(
    kept: Mapping[str, JSON],
    owned: Mapping[tuple[str, str], list[JSON]],
    lockfile: Lockfile | None,
) -> list[Twin]:
    """Live objects tagged for an address whose kept object is another one.

    Args:
        kept: address -> the live object the plan manages for it.
        owned: (kind, address) -> live and archived objects this project's tags claim.
        lockfile: the lockfile (says whether the kept one is the one it holds).

    A credential's twin must sit in the same vault: the credentials of a twin vault go with
    that vault.
    """
    resources = lockfile.resources if lockfile is not None else {}
    # an object the lockfile records (under any address) is no twin: tagged for another
    # address than its entry's, that entry reports it (not ours), and nothing archives it
    recorded = {e.id for e in resources.values()}
    out: list[Twin] = []
    for address, obj in sorted(kept.items()):
        kind = kind_of(address)
        entry = resources.get(address)
        held = entry is not None and entry.id == obj["id"]
        which = "the lockfile holds" if held else "the plan keeps (the newest)"
        for other in sorted(owned.get((kind, address), []), key=lambda o: str(o["id"])):
            if other.get("archived_at") or other["id"] == obj["id"] or other["id"] in recorded:
                continue
            if kind == "credential" and other.get("vault_id") != obj.get("vault_id"):
                continue
            out.append(
                Twin(
                    address=address,
                    kind=kind,
                    remote_id=str(other["id"]),
                    kept_id=str(obj["id"]),
                    message=(
                        f"{other['id']} also claims {address} (both carry this project's "
                        "tags; two applies that did not share a lockfile each created one); "
                        f"{obj['id']} is the one {which}. `reconciler apply --prune` "
                        f"archives {other['id']}"
                    ),
                )
            )
    return out


def twin_archives(twins: list[Twin]) -> list[Archive]:
    """With ``--prune``: archive each twin, under ``twin_address``."""
    return [
        Archive(
            address=twin_address(t.address, t.remote_id),
            kind=t.kind,
            remote_id=t.remote_id,
            reason=f"a twin of {t.address} ({t.kept_id}), which stays (--prune)",
        )
        for t in twins
    ]

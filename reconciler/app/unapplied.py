"""What ``run`` warns of before a new session: the manifests of what it runs not applied yet.

The session runs what the last apply recorded (``app.session``); an agent's prompt edited,
the files of a skill it follows changed, or a deployment's vault credentials rotated, and
not applied, is not what answers. ``unapplied_warning`` says which, and what apply would
do about it. Lookups over a ``ManifestSet`` and a ``Lockfile``; no I/O but a secret's read
(compared with its salted fingerprint, never shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.app.session import SessionTarget
from reconciler.engine.desired import desired_resources, digest_matches
from reconciler.errors import ManifestError
from reconciler.manifest import ManifestSet
from reconciler.state import Lockfile, fingerprint_matches


def unapplied_warning(
    manifests: ManifestSet, lockfile: Lockfile, target: SessionTarget
) -> str | None:
    """A warning when the manifest of what a new session runs (the agent and its
    environment; for a deployment, the deployment too), or the files of a skill the agent
    follows, is not what the last apply recorded, else None: the session runs what was
    applied, so a prompt edited and not applied yet is not what answers."""
    wanted = {target.agent_address, target.address}
    if target.environment_address is not None:  # None: a continued session keeps its own
        wanted.add(target.environment_address)
    vaults = sorted(  # a deployment's session gets its vaults, credentials as applied
        address
        for address, entry in lockfile.resources.items()
        if entry.kind == "vault" and entry.id in target.vault_ids
    )
    wanted.update(vaults)
    desired = {r.address: r for r in desired_resources(manifests.documents) if r.address in wanted}
    differ = [
        f"{address}'s manifest"
        for address in sorted(wanted)
        if address in desired
        and (entry := lockfile.resources.get(address)) is not None
        and not digest_matches(desired[address], entry.spec_digest)
    ]
    agent = desired.get(target.agent_address)
    skills = (
        _followed_skills_changed(manifests, lockfile, agent.address, agent.skill_refs)
        if agent is not None
        else []
    )
    differ += [f"{skill}'s files" for skill in skills]
    changed_vaults = [v for v in vaults if _credentials_changed(manifests, lockfile, v)]
    differ += [f"{vault}'s credentials" for vault in changed_vaults]
    changed_vaults += [v for v in vaults if f"{v}'s manifest" in differ]
    if not differ:
        return None
    version = f" version {target.agent_version}" if target.agent_version is not None else ""
    names = " and ".join(differ)
    verb = "is" if len(differ) == 1 and differ[0].endswith("manifest") else "are"
    hint = "`reconciler apply` makes it"
    uses = f" with {' and '.join(sorted(set(changed_vaults)))}" if changed_vaults else ""
    pinned = (
        _manifest_pin(desired.get(target.address))
        if target.address != target.agent_address
        else None
    )
    agent_changed = [f"{target.agent_address}'s manifest", *(f"{s}'s files" for s in skills)]
    if pinned is not None and any(d in agent_changed for d in differ):
        # apply uploads a new agent version; the deployment's pin does not follow it
        rest = "`reconciler apply` makes the rest, but " if set(differ) - set(agent_changed) else ""
        hint = (
            f"{rest}{target.address} stays pinned to {target.agent_address} version {pinned}: "
            "`reconciler apply` creates a new agent version, which the pin does not follow; "
            f"pin that version to run it here, or `reconciler run {target.agent_address}` "
            "runs the agent"
        )
    return (
        f"{names} {verb} not what the last apply recorded: this session runs "
        f"{target.agent_address}{version}{uses} as applied (`reconciler plan` shows the "
        f"difference, {hint})"
    )


def _credentials_changed(manifests: ManifestSet, lockfile: Lockfile, vault: str) -> bool:
    """Whether the credentials of ``vault`` in the manifests are not those the last apply
    recorded: one added or removed, its manifest edited, or its secret's value not the one
    fingerprinted (a token file rotated). A secret that cannot be read here (its variable
    unset in this shell) is not compared; nothing about it is shown either way."""
    prefix = f"{vault}.credential."
    want = {r.address: r for r in desired_resources(manifests.documents) if r.parent == vault}
    have = {
        address: entry
        for address, entry in lockfile.resources.items()
        if entry.kind == "credential" and address.startswith(prefix)
    }
    if set(want) != set(have):
        return True
    for address, res in want.items():
        entry = have[address]
        if not digest_matches(res, entry.spec_digest):
            return True
        for path, _ in res.secrets:
            recorded = entry.secret_fingerprints.get(path)
            if recorded is None or res.ignores(path):
                continue
            try:
                value = manifests.resolve_secret(address, path)
            except (KeyError, ManifestError):
                continue
            if not fingerprint_matches(lockfile.salt, value, recorded):
                return True
    return False


def _manifest_pin(deployment: Any) -> int | None:
    """The agent version a deployment's manifest pins (``agent: {ref, version: N}``), or
    None when it follows the latest (or is no deployment)."""
    if deployment is None or deployment.kind != "deployment":
        return None
    agent = deployment.spec.get("agent")
    version = agent.get("version") if isinstance(agent, Mapping) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _followed_skills_changed(
    manifests: ManifestSet,
    lockfile: Lockfile,
    agent_address: str,
    skill_refs: Mapping[str, str | None],
) -> list[str]:
    """The skills the agent follows (no pinned version) whose files are not those of the
    version the last apply resolved it to: the next apply uploads a new version and moves
    the agent to it, though the agent's own manifest is unchanged."""
    agent = lockfile.resources.get(agent_address)
    changed = []
    for skill, pinned in sorted(skill_refs.items()):
        source = manifests.skills.get(skill)
        entry = lockfile.resources.get(skill)
        if pinned is not None or source is None or entry is None:
            continue
        version = (agent.skills.get(skill) if agent is not None else None) or entry.latest
        uploaded = entry.uploaded.get(version) if version is not None else None
        if uploaded is not None and uploaded.digest != source.digest:
            changed.append(skill)
    return changed

"""Saved plans (``plan --out``, ``apply PLANFILE``): bind them to the manifests, check them.

The file format is ``state/planfile.py``'s; this module adds what a plan means. A plan file
holds no secret value: it is bound to the manifests it was made from by a digest
of them and of their secrets' salted fingerprints, and ``apply`` refuses it when either the
file or the manifests changed, or when a resource it touches changed since (``engine.staleness``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.app.secrets import SecretSource
from reconciler.app.workspace import Settings, state_exists
from reconciler.engine.model import ALREADY_REMOVED, Plan
from reconciler.engine.planner import targeted_addresses
from reconciler.errors import PlanError
from reconciler.manifest import ManifestSet
from reconciler.manifest.files import (
    MANIFEST_SUFFIXES,
    MAX_PLAN_BYTES,
    SKILL_FILE,
    FileRefused,
    ignore_matcher,
    read_limited,
)
from reconciler.provider.origin import describe_origin, same_origin
from reconciler.state import (
    Lockfile,
    fingerprint_secret,
    json_digest,
    new_salt,
)
from reconciler.state.planfile import decode_plan_file, write_plan_file


def manifests_digest(
    manifests: ManifestSet, secrets: SecretSource, salt: str, targets: tuple[str, ...] = ()
) -> str:
    """Digest of what a plan was made from: every document, and every secret's fingerprint
    (with ``targets``, the plan's ``--target``: the secrets of the targeted addresses, the
    only ones such a plan reads, so a saved targeted plan needs no other secret either).

    Secrets enter as ``fingerprint_secret(salt, value)`` (salted scrypt), never as values, so
    the digest can sit in a plan file for anyone to read.

    Raises:
        ManifestError: a secret cannot be read.
    """
    documents = [
        {
            "address": doc.address,
            "kind": doc.kind,
            "name": doc.name,
            "protect": doc.protect,
            "ignore_changes": list(doc.ignore_changes),
            "spec": doc.spec.model_dump(mode="json"),
            # only when set: digests of plans saved before moves existed stay the same
            **({"moved_from": doc.moved_from} if doc.moved_from is not None else {}),
            # a skill's files are part of what it asks for (their digest, never content)
            **(
                {"files": manifests.skills[doc.address].digest}
                if doc.address in manifests.skills
                else {}
            ),
        }
        for doc in manifests.documents
    ]
    wanted = targeted_addresses(manifests.documents, targets) if targets else None
    fingerprints = {
        f"{address} {path}": fingerprint_secret(salt, secrets(address, path))
        for address, path in sorted(secrets.references)
        if wanted is None or address in wanted
    }
    return json_digest({"documents": documents, "secrets": fingerprints})


def check_plan_out(settings: Settings, path: Path) -> None:
    """Refuse ``plan --out PATH`` over the state or the embedded provider's database, before
    anything is planned: a plan written there would destroy what it is made from.

    Nor into what the manifests are read from: a manifest file (or a YAML file the next
    load would read as one, which would break the apply of this very plan), or a skill's
    directory (the plan would become a file of the skill's next version).

    Raises:
        PlanError: ``path`` is the lockfile or a file beside it that belongs to it
            (``PATH.backup``, ``PATH.lock``, its journal and history), or the database of the
            embedded provider (or one of its SQLite side files), or read with the manifests.
    """
    target = path.resolve()
    what_manifests_read = _read_with_manifests(Path(settings.manifests), target)
    if what_manifests_read is not None:
        raise PlanError(
            f"--out {path}: that is {what_manifests_read}; a plan written there would be read "
            "with the manifests. Save the plan elsewhere, e.g. --out plan.json"
        )
    owned: list[tuple[Path, str]] = [(settings.db_path, "the embedded provider's database")]
    if settings.backend is None:
        owned.insert(0, (settings.lockfile, "the lockfile"))
    for file, what in owned:
        full = file.resolve()
        # PATH.backup, PATH.lock, PATH.journal, PATH.history; SQLite's PATH-wal, PATH-shm
        beside = target.parent == full.parent and target.name[len(full.name) :][:1] in (".", "-")
        if target == full or (beside and target.name.startswith(full.name)):
            raise PlanError(
                f"--out {path}: that is {what} ({file}) or a file of it; a plan written there "
                "would destroy it. Save the plan elsewhere, e.g. --out plan.json"
            )


def _read_with_manifests(manifests: Path, target: Path) -> str | None:
    """What ``target`` is to the manifests at ``manifests`` (a manifest file, a file of a
    skill's directory), or None when loading them would not read it."""
    root = manifests.resolve()
    if root.is_file() or not root.exists():
        return "a manifest file" if target == root else None
    if not target.is_relative_to(root):
        return None
    parents = [d for d in target.parents if d.is_relative_to(root)]
    if any((d / SKILL_FILE).is_file() for d in parents if d != root):
        return "a file of a skill's directory"
    relative = target.relative_to(root)
    if any(part.startswith(".") for part in relative.parts):
        return None  # hidden: never read
    if not target.name.lower().endswith(MANIFEST_SUFFIXES):
        return None
    matches = ignore_matcher(root)
    if matches is not None and matches(relative.as_posix()):
        return None
    return "a manifest file"


def save_plan(
    plan: Plan,
    path: Path,
    *,
    manifests: ManifestSet | None = None,
    origin: str | None = None,
) -> None:
    """Write a plan for a later ``apply PLANFILE`` (no secret values are in a plan).

    With ``manifests`` (the CLI always passes them) the file is bound to them: it records a
    digest of the plan itself and one of the manifests and their secrets' fingerprints
    (``manifests_digest``, under a fresh salt kept in the file), and ``apply`` refuses the
    file when either no longer matches (``check_plan_binding``). With ``origin`` (the
    provider the plan was made against, ``provider_origin``) it records that too, and
    ``apply`` refuses the file against another provider (``check_plan_provider``), also
    before the lockfile records any origin.

    Raises:
        PlanError: the file cannot be written.
    """
    data = plan.model_dump(mode="json")
    binding = None
    if manifests is not None:
        salt = new_salt()
        binding = {
            "salt": salt,
            "manifests": manifests_digest(manifests, SecretSource(manifests), salt, plan.targets),
            "plan": json_digest(data),
            **({"origin": origin} if origin is not None else {}),
        }
    try:
        write_plan_file(path, data, binding)
    except OSError as err:  # named by the plan file, not by the temp file it failed on
        raise PlanError(f"cannot write the plan to {path}: {err.strerror or err}") from None


def load_plan(path: Path) -> Plan:
    """Read a saved plan.

    Raises:
        PlanError: the file is not a plan written by ``plan --out``.
    """
    return read_plan_file(path)[0]


def read_plan_file(path: Path) -> tuple[Plan, dict[str, Any]]:
    """The saved plan and its ``binding`` (``{}`` when the file has none)."""
    try:
        raw = read_limited(path, MAX_PLAN_BYTES)
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except FileRefused as err:
        raise PlanError(f"{path}: not a saved plan (it {err.reason})") from None
    except OSError as err:
        raise PlanError(f"{path}: not a saved plan ({err})") from None
    data = decode_plan_file(path, raw)
    binding = data.get("binding")
    _check_format_version(path, data.get("plan"))
    try:
        plan = Plan.model_validate(_upgraded(data["plan"]))
        # the digest is of the plan as read, so any edit of its text shows
        plan_digest = json_digest(data["plan"])
    except Exception as err:  # noqa: BLE001 - any failure here means "not a plan we can read"
        if _edited(data, binding):  # what the binding check says of an edit that kept the shape
            again = f"run `reconciler plan --out {path}` again and review it"
            raise PlanError(f"{path}: {EDITED}: {again}") from None
        raise PlanError(f"{path}: unreadable plan ({err.__class__.__name__}); plan again") from None
    if not isinstance(binding, dict):
        return plan, {}
    return plan, {**binding, "read_plan": plan_digest}


def _upgraded(plan: Any) -> Any:
    """``plan`` as this reconciler reads it, from a file an older one may have written: an
    archive or delete of an object archived or gone already said so by its reason only
    (``ALREADY_REMOVED``), before the action carried ``forgets``."""
    if not isinstance(plan, dict) or not isinstance(plan.get("actions"), list):
        return plan
    actions = [
        {**a, "forgets": True}
        if isinstance(a, dict)
        and a.get("type") in ("archive", "delete")
        and "forgets" not in a
        and str(a.get("reason", "")).startswith(ALREADY_REMOVED)
        else a
        for a in plan["actions"]
    ]
    return {**plan, "actions": actions}


EDITED = (
    "the plan was edited after `reconciler plan --out` wrote it (its digest does not match); "
    "refusing to apply what was not reviewed"
)


def _edited(data: Mapping[str, Any], binding: object) -> bool:
    """Whether the plan's recorded digest no longer matches its text."""
    if not isinstance(binding, dict) or not isinstance(binding.get("plan"), str):
        return False
    try:
        return bool(json_digest(data.get("plan")) != binding["plan"])
    except Exception:  # noqa: BLE001 - not even JSON data: unreadable, said as such
        return False


#: the plan format this reconciler writes and reads (docs/json-format.md)
PLAN_FORMAT_VERSION: int = Plan.model_fields["format_version"].default


def _check_format_version(path: Path, plan: object) -> None:
    """Refuse a plan of another format before reading it: a newer reconciler's plan may mean
    what this one would carry out otherwise (an incompatible change raises the version)."""
    version = plan.get("format_version") if isinstance(plan, dict) else None
    if version == PLAN_FORMAT_VERSION or not isinstance(version, int) or isinstance(version, bool):
        return  # a missing or odd version: the model's validation says what is wrong
    newer = version > PLAN_FORMAT_VERSION
    raise PlanError(
        f"{path}: a plan of format {version}, written by {'a newer' if newer else 'an older'} "
        f"reconciler; this one reads format {PLAN_FORMAT_VERSION}. Apply it with the "
        "reconciler that wrote it, or run `reconciler plan --out` again with this one"
    )


def check_plan_binding(
    path: Path,
    binding: Mapping[str, Any],
    manifests: ManifestSet,
    secrets: SecretSource,
    targets: tuple[str, ...] = (),
) -> None:
    """Refuse a saved plan edited since ``plan --out``, or made from other manifests.

    Raises:
        PlanError: the file records no binding, its plan digest does not match its plan, or
            the manifests (or a secret's value) differ from those the plan was made from.
        ManifestError: a secret the manifests name cannot be read.
    """
    again = f"run `reconciler plan --out {path}` again and review it"
    salt, recorded, plan_digest = (binding.get(k) for k in ("salt", "manifests", "plan"))
    if not (isinstance(salt, str) and isinstance(recorded, str) and isinstance(plan_digest, str)):
        raise PlanError(
            f"{path}: the plan file records no digest of the manifests it was made from "
            f"(written by an older reconciler, or edited), so it cannot be checked; {again}"
        )
    if binding.get("read_plan") != plan_digest:
        raise PlanError(f"{path}: {EDITED}: {again}")
    try:
        current = manifests_digest(manifests, secrets, salt, targets)
    except ValueError:  # a salt that is not hex: edited
        current = ""
    if current != recorded:
        raise PlanError(
            f"{path}: the manifests (or a secret they name) changed since this plan was made, "
            f"so it no longer shows what they describe; {again}"
        )


def check_plan_origin(plan: Plan, settings: Settings, lockfile: Lockfile) -> None:
    if plan.project != settings.project:
        raise PlanError(
            f"the saved plan is for project {plan.project!r}, not {settings.project!r}; pass "
            f"--project {shlex.quote(plan.project)} (or RECONCILER_PROJECT) to apply it"
        )
    exists = state_exists(settings, lockfile)
    what = "lockfile" if settings.backend is None else "state"
    if plan.lineage and not exists:
        # a wrong --lockfile/--backend, or a checkout without it: carried out, the plan would
        # start a new state holding only what it changed, and the reviewed one would miss it
        raise PlanError(
            f"the saved plan was made from the {what} of lineage {plan.lineage}, but "
            f"{settings.state_name} does not exist; check --lockfile/--backend, or run "
            "`reconciler plan` again"
        )
    if plan.lineage and plan.lineage != lockfile.lineage:
        raise PlanError(
            f"the saved plan was made from another {what} "
            f"(lineage {plan.lineage}, "
            f"{settings.state_name} has {lockfile.lineage}); run `reconciler plan` again"
        )


def check_plan_provider(
    path: Path,
    binding: Mapping[str, Any],
    origin: str,
    *,
    allow_change: bool = False,
    lockfile_dir: str | os.PathLike[str] = ".",
) -> None:
    """Refuse a saved plan made against another provider than this run's ``origin``.

    The lockfile's origin (``check_origin``) guards every run once something was applied;
    this guards the first: a plan reviewed against staging, applied with production's URL,
    would create everything there unreviewed (its ids would be staging's, too). A plan file
    that records no origin (written before origins were recorded) is not checked.

    Raises:
        PlanError: the plan records another origin and ``allow_change`` is False.
    """
    recorded = binding.get("origin")
    if (
        isinstance(recorded, str)
        and not same_origin(recorded, origin, lockfile_dir)
        and not allow_change
    ):
        raise PlanError(  # an embedded provider named by its path from here
            f"{path} was made against {describe_origin(recorded, lockfile_dir)}, but this run "
            f"talks to {describe_origin(origin, lockfile_dir)}. Check "
            "--provider-url (and --provider-db); to carry it out against this provider "
            "anyway, pass --allow-origin-change"
        )

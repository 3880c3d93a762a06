"""Turn manifest documents into wire request bodies and comparable desired objects.

A manifest spec is the provider's create fields; this module adds what the manifest leaves
implicit (the remote name, the ownership metadata), swaps references for placeholders the
executor resolves at apply time, and builds update bodies (only the changed fields, with
explicit clears, metadata as a patch). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.engine.diff import lists_at
from reconciler.engine.model import LITERAL, PLACEHOLDER_KEYS
from reconciler.engine.normalize import (
    FIELD_DEFAULTS,
    KEYED_LISTS,
    REORDERABLE_LISTS,
    SECRET_FIELDS,
    UNORDERED_LISTS,
    copy_json,
    drop_paths,
    normalize_env_config,
    normalize_multiagent,
)
from reconciler.jsontypes import JSON
from reconciler.kinds import (
    KIND_INFO,
    MANIFEST_KINDS,
    TAG_KEYS,
    Kind,
    address_of,
    credential_address,
    remote_name_of,
    tags,
)
from reconciler.manifest import Document


#: a credential's spec fields: what a vault's ``ignore_changes: [credentials]`` leaves alone
CREDENTIAL_FIELDS = ("auth", "display_name", "metadata")


@dataclass(frozen=True)
class DesiredResource:
    """One resource the manifests ask for, in wire terms."""

    address: str
    kind: Kind
    #: the spec as wire fields (no ownership metadata, references still by manifest name)
    spec: JSON
    remote_name: str
    protect: bool
    ignore_changes: tuple[str, ...]
    #: parent address (a credential's vault)
    parent: str | None = None
    #: secret paths inside the spec (``auth.token``) -> their manifest reference
    secrets: tuple[tuple[str, JSON], ...] = ()
    #: the address it had before (``moved_from``; a moved vault's credentials move with it)
    moved_from: str | None = None
    #: deployments: the ``rollout`` block (never sent; ``engine.rollout`` gates pin moves)
    rollout: JSON | None = None
    #: deployments: the agent version the pin stays at while the candidate is held
    #: (``engine.rollout``); the manifest's own pin still makes the spec digest
    held_pin: int | None = None
    #: deployments: with ``held_pin``, the agent object it stays on, when that is not the one
    #: the manifest's agent now is (an agent created again: its candidate is held)
    held_agent_id: str | None = None

    @property
    def wire_ignore_changes(self) -> tuple[str, ...]:
        """``ignore_changes`` in wire terms, as the diff compares: a deployment's
        ``environment`` is its ``environment_id``, its ``vaults`` its ``vault_ids``."""
        if self.kind != "deployment":
            return self.ignore_changes
        return tuple(_wire_path(path) for path in self.ignore_changes)

    def without_ignored(self, obj: JSON) -> JSON:
        """``obj`` (a wire form) without the paths ``ignore_changes`` names. ``metadata``
        whole leaves the ownership tags in: they are the reconciler's own, so a move
        retags the object whatever the manifest ignores."""
        paths = self.wire_ignore_changes
        if "metadata" not in paths:
            return drop_paths(obj, paths)
        out = drop_paths(obj, tuple(p for p in paths if p != "metadata"))
        tags_only = {k: v for k, v in (obj.get("metadata") or {}).items() if k in TAG_KEYS}
        return {**out, "metadata": tags_only}

    def ignores(self, path: str) -> bool:
        """Whether ``ignore_changes`` leaves ``path`` (``auth.token``) alone."""
        return any(path == p or path.startswith(f"{p}.") for p in self.wire_ignore_changes)

    @property
    def refs(self) -> tuple[str, ...]:
        """Addresses this resource references (must exist before it)."""
        out: list[str] = []
        if self.parent:
            out.append(self.parent)
        out.extend(self.skill_refs)
        if self.kind == "deployment":
            agent = self.spec.get("agent")
            if isinstance(agent, dict) and agent.get("ref"):
                out.append(f"agent.{agent['ref']}")
            if self.spec.get("environment"):
                out.append(f"environment.{self.spec['environment']}")
            out.extend(f"vault.{v}" for v in self.spec.get("vaults") or [])
            out.extend(
                f"memory_store.{r['memory_store']}"
                for r in self.spec.get("resources") or []
                if "memory_store" in r
            )
        return tuple(out)

    @property
    def skill_refs(self) -> dict[str, str | None]:
        """For agents: skill address -> the pinned version id, or None to follow the newest
        (each ``{ref: NAME, version?}`` of its ``skills``)."""
        if self.kind != "agent":
            return {}
        return {
            address_of("skill", s["ref"]): s.get("version")
            for s in self.spec.get("skills") or []
            if isinstance(s, dict) and "ref" in s
        }

    @property
    def pin(self) -> tuple[str, int | None] | None:
        """For deployments: (agent address, pinned version or None for latest)."""
        if self.kind != "deployment":
            return None
        agent = self.spec.get("agent") or {}
        version = agent.get("version") if self.held_pin is None else self.held_pin
        if version == "latest":
            version = None
        return f"agent.{agent.get('ref')}", version


def _is_secret_ref(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and bool(v)
        and set(v) <= {"from_env", "from_file"}
        and any(v.get(k) for k in ("from_env", "from_file"))
    )


def _find_secrets(obj: Any, prefix: str) -> list[tuple[str, JSON]]:
    out: list[tuple[str, JSON]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if k in SECRET_FIELDS and _is_secret_ref(v):
                out.append((path, v))
            else:
                out.extend(_find_secrets(v, path))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_find_secrets(v, f"{prefix}[{i}]"))
    return out


#: The last tuple of documents ``desired_resources`` was given, and its answer: one plan and
#: apply asks for the same documents' resources four times (the secrets, the plan, and again
#: for the apply), ~6 ms each at 1,100 documents. A tuple of frozen documents always gives the
#: same answer; it is kept referenced here, so ``is`` cannot match another tuple.
_LAST: tuple[tuple[Document, ...], tuple[DesiredResource, ...]] | None = None


def desired_resources(documents: Iterable[Document]) -> list[DesiredResource]:
    """Every resource the manifests declare, credentials as their own resources.

    Args:
        documents: manifest ``Document`` objects (kind, name, spec, protect, ignore_changes).
            Given the same tuple as the call before (``ManifestSet.documents``), the answer
            is that call's again (a new list of the same frozen ``DesiredResource`` objects,
            whose specs nobody edits in place).
    """
    global _LAST
    last = _LAST
    if last is not None and last[0] is documents:
        return list(last[1])
    out = _desired_resources(documents)
    if isinstance(documents, tuple):
        _LAST = (documents, tuple(out))
    return out


def _desired_resources(documents: Iterable[Document]) -> list[DesiredResource]:
    out: list[DesiredResource] = []
    for doc in documents:
        kind = MANIFEST_KINDS[doc.kind]
        spec = doc.spec.model_dump(mode="json", exclude_unset=True)
        address = address_of(kind, doc.name)
        ignore = tuple(doc.ignore_changes or ())
        moved = doc.moved_from_address
        if kind == "vault":
            creds = spec.pop("credentials", None) or []
            remote = remote_name_of(kind, spec) or doc.name
            out.append(
                DesiredResource(address, kind, spec, remote, doc.protect, ignore, moved_from=moved)
            )
            for cred in creds:
                cred = dict(cred)
                cname = cred.pop("name")
                caddr = credential_address(doc.name, cname)
                # ``credentials`` whole: every field of every credential, its secret too
                cignore = (
                    CREDENTIAL_FIELDS
                    if "credentials" in ignore
                    else tuple(
                        p.split(".", 2)[2] for p in ignore if p.startswith(f"credentials.{cname}.")
                    )
                )
                out.append(
                    DesiredResource(
                        caddr,
                        "credential",
                        cred,
                        remote_name_of("credential", cred) or cname,
                        doc.protect,
                        cignore,
                        parent=address,
                        secrets=tuple(_find_secrets(cred, "")),
                        moved_from=(
                            credential_address(doc.moved_from, cname)
                            if doc.moved_from is not None
                            else None
                        ),
                    )
                )
            continue
        rollout = None
        if kind == "deployment":
            agent = spec.get("agent")
            if isinstance(agent, str):
                spec["agent"] = {"ref": agent, "version": None}
            rollout = spec.pop("rollout", None)
        remote = remote_name_of(kind, spec) or doc.name
        out.append(
            DesiredResource(
                address,
                kind,
                spec,
                remote,
                doc.protect,
                ignore,
                secrets=tuple(_find_secrets(spec, "")),
                moved_from=moved,
                rollout=rollout,
            )
        )
    return sorted(out, key=lambda r: r.address)


def _secret_placeholders(obj: Any, prefix: str = "", key: str = "") -> Any:
    """Secret references (only under secret field names) -> ``{"$secret": path}``."""
    if isinstance(obj, dict):
        if key in SECRET_FIELDS and _is_secret_ref(obj):
            return {"$secret": prefix}
        return {
            k: _secret_placeholders(v, f"{prefix}.{k}" if prefix else str(k), str(k))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_secret_placeholders(v, f"{prefix}[{i}]") for i, v in enumerate(obj)]
    return obj


def escape_literals(value: Any) -> Any:
    """A deep copy of ``value`` (``copy_json``) with every mapping that carries a placeholder
    key (a JSON Schema ``$ref`` in a custom tool's ``input_schema``) wrapped as
    ``{"$literal": mapping}``: sent as written, never resolved as a reference
    (``engine.model``)."""
    if isinstance(value, dict):
        if PLACEHOLDER_KEYS.intersection(value):
            return {LITERAL: copy_json(value)}
        return {k: escape_literals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_literals(v) for v in value]
    return copy_json(value)


def request_fields(res: DesiredResource, project: str) -> JSON:
    """All wire request fields of ``res``: names filled, ownership added, references as
    placeholders, secrets as ``{"$secret": path}``, the manifest's own values that look like
    placeholders as ``{"$literal": value}``."""
    spec = dict(res.spec)
    # metadata is a flat map of strings, sent as a patch: its keys are never placeholders
    metadata = dict(spec.pop("metadata", None) or {})
    spec = escape_literals(spec)  # the copy the rest of this function may change
    metadata.update(tags(project, res.address))
    if res.kind == "agent" and spec.get("skills"):
        spec["skills"] = [_wire_skill(s) for s in spec["skills"]]
    if res.kind == "deployment":
        agent = spec.pop("agent")
        version = agent.get("version") if res.held_pin is None else res.held_pin
        spec["agent"] = {
            "$pin": f"agent.{agent['ref']}",
            "version": None if version in (None, "latest") else int(version),
        }
        if res.held_agent_id is not None and res.held_pin is not None:
            spec["agent"] = {"type": "agent", "id": res.held_agent_id, "version": res.held_pin}
        spec["environment_id"] = {"$ref": f"environment.{spec.pop('environment')}"}
        spec["vault_ids"] = [{"$ref": f"vault.{v}"} for v in spec.pop("vaults", None) or []]
        if spec.get("resources"):
            spec["resources"] = [_wire_resource(r) for r in spec["resources"]]
    spec.setdefault(KIND_INFO[res.kind].name_field, res.remote_name)
    body: dict[str, Any] = _secret_placeholders(spec)
    body["metadata"] = metadata
    return body


def _wire_skill(skill: JSON) -> JSON:
    """An agent's skill in wire form: a Skill manifest by name becomes a placeholder the
    executor resolves to ``{type: custom, skill_id, version}`` (the newest version when
    none is pinned, one this apply uploads included); wire-form skills pass as they are."""
    if "ref" not in skill:
        return skill
    return {"$skill": address_of("skill", skill["ref"]), "version": skill.get("version")}


def _wire_resource(resource: JSON) -> JSON:
    """A deployment resource in wire form: a mount by name becomes a ``memory_store``
    resource whose id is resolved at apply; wire-form resources pass as they are."""
    if "memory_store" not in resource:
        return resource
    wire: JSON = {"type": "memory_store", "memory_store_id": {"$ref": _store(resource)}}
    wire.update({k: v for k, v in resource.items() if k != "memory_store"})
    return wire


def _store(resource: JSON) -> str:
    return address_of("memory_store", resource["memory_store"])


def create_body(res: DesiredResource, project: str) -> JSON:
    return request_fields(res, project)


#: Value that clears a top-level field in an update request.
def _clear_value(kind: str, field: str) -> Any:
    default = FIELD_DEFAULTS[kind].get(field)
    if isinstance(default, list):
        return []
    if kind == "memory_store" and field == "description":
        return ""  # a memory store's update keeps a null description; "" clears it
    if kind == "environment" and field == "config":
        return {
            "type": "cloud",
            "networking": {"type": "unrestricted"},
            "packages": {m: [] for m in ("pip", "npm", "apt", "cargo", "gem", "go")},
        }
    return None


#: credential auth fields that cannot change in place (a change means replace)
IMMUTABLE_AUTH = ("type", "mcp_server_url", "secret_name")


def auth_update(auth: JSON) -> JSON:
    """The update form of a credential ``auth``: immutable fields dropped except ``type``."""
    out = {k: v for k, v in auth.items() if k not in IMMUTABLE_AUTH}
    out["type"] = auth["type"]
    if auth["type"] == "mcp_oauth":
        # an omitted field keeps the stored one: a manifest that dropped it means "clear it"
        out.setdefault("expires_at", None)
        out.setdefault("refresh", None)
    refresh = out.get("refresh")
    if isinstance(refresh, dict):
        out["refresh"] = {
            k: v for k, v in refresh.items() if k not in ("client_id", "token_endpoint", "resource")
        }
        # an omitted scope keeps the stored one; the wire clears it with ""
        out["refresh"].setdefault("scope", "")
        if (out["refresh"].get("token_endpoint_auth") or {}).get("type") == "none":
            # the update form takes only a new client secret (basic/post); "none" has none
            del out["refresh"]["token_endpoint_auth"]
    return out


def update_body(
    res: DesiredResource,
    project: str,
    fields: list[str],
    live: JSON,
) -> JSON:
    """The update request for the changed top-level ``fields`` of ``res``."""
    full = request_fields(res, project)
    body: JSON = {}
    for field in fields:
        # paths under this field that ignore_changes names keep their live value: the plan
        # left them alone, so the update must not write the manifest's value over them
        ignored = res.wire_ignore_changes
        kept = [p.split(".", 1)[1] for p in ignored if p.startswith(f"{field}.")]
        if field == "metadata":
            want = full["metadata"]
            have = live.get("metadata") or {}
            patch: JSON = {k: v for k, v in want.items() if have.get(k) != v}
            patch.update({k: None for k in have if k not in want})
            whole = "metadata" in ignored  # only the ownership tags are written then
            body["metadata"] = {
                k: v for k, v in patch.items() if k not in kept and (not whole or k in TAG_KEYS)
            }
            continue
        if field == "auth":
            value = auth_update(full["auth"])
        elif res.kind == "environment" and field == "config":
            # omitted networking/packages would keep the stored value: send them explicitly
            value = normalize_env_config(full.get("config"))
            if kept and isinstance(live.get("config"), dict):
                value = _keep_live(value, normalize_env_config(live["config"]), kept)
            body["config"] = value
            continue
        elif res.kind == "agent" and field == "multiagent":
            # an omitted multiagent_20261001 member would keep the stored one: send them all
            value = normalize_multiagent(full.get("multiagent"))
        elif field in full:
            value = full[field]
        else:
            value = _clear_value(res.kind, field)
        body[field] = _keep_live(value, live.get(field), kept) if kept else value
    return body


def _keep_live(value: Any, live: Any, paths: list[str]) -> Any:
    """``value`` with the live value at each dotted ``path`` (dropped where live has none)."""
    if not isinstance(value, dict):
        return value
    out = copy_json(value)
    for path in paths:
        *parents, last = path.split(".")
        cur, src = out, live
        for part in parents:
            nxt = cur.get(part)
            src = src.get(part) if isinstance(src, dict) else None
            if not isinstance(nxt, dict):
                break
            cur = nxt
        else:
            if isinstance(src, dict) and last in src:
                cur[last] = copy_json(src[last])
            else:
                cur.pop(last, None)
    return out


#: A wire list the diff sorts, as the manifest spells it (a deployment names its vaults).
_MANIFEST_SPELLING = {"vault_ids": "vaults"}
#: A deployment's manifest field -> the wire field it becomes (references by name -> ids).
_DEPLOYMENT_WIRE = {"environment": "environment_id", "vaults": "vault_ids"}


def _wire_path(path: str) -> str:
    head, dot, rest = path.partition(".")
    return _DEPLOYMENT_WIRE.get(head, head) + dot + rest


def manifest_path(kind: str, path: str) -> str:
    """A diff path as the manifest spells it (``vault_ids[0]`` of a deployment: ``vaults[0]``)."""
    if kind != "deployment":
        return path
    for spec_name, wire in _DEPLOYMENT_WIRE.items():
        if path == wire or path.startswith((wire + ".", wire + "[")):
            return spec_name + path[len(wire) :]
    return path


def _unordered_spec_lists(kind: str, reorderable: bool = True) -> tuple[str, ...]:
    """Manifest spec paths whose list order means nothing to the provider: the lists
    ``normalize`` sorts (``UNORDERED_LISTS``, ``KEYED_LISTS``) and those the diff aligns
    (``REORDERABLE_LISTS``, unless ``reorderable`` is false), in the manifest's spelling."""
    aligned = REORDERABLE_LISTS.get(kind) if reorderable else None
    wire = (
        *UNORDERED_LISTS.get(kind, ()),
        *KEYED_LISTS.get(kind, {}),
        *((aligned,) if aligned else ()),
    )
    return tuple(_MANIFEST_SPELLING.get(path, path) for path in wire)


def _json_order(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _canonical_spec(res: DesiredResource, reorderable: bool = True) -> Any:
    """``res.spec`` as the diff sees it: without its ``ignore_changes`` paths, unordered lists
    sorted, and an agent's ``model: {id: X}`` as ``model: X``; a spec already in that form is
    unchanged, so its digest is the one lockfiles recorded before."""
    # a field ignore_changes names is never diffed: editing it in the manifest changes nothing
    spec: Any = drop_paths(res.spec, tuple(res.ignore_changes))
    unordered = _unordered_spec_lists(res.kind, reorderable)
    if unordered:
        spec = copy_json(spec)  # sorted in place below; the manifest's own spec stays as written
        for pattern in unordered:
            for items in lists_at(pattern, spec):
                items.sort(key=_json_order)
    model = spec.get("model") if isinstance(spec, dict) else None
    if res.kind == "agent" and isinstance(model, dict) and list(model) == ["id"]:
        spec = {**spec, "model": model["id"]}
    return spec


def _digest(res: DesiredResource, spec: Any) -> str:
    payload = {
        "spec": spec,
        "remote_name": res.remote_name,
        "protect": res.protect,
        "ignore_changes": list(res.ignore_changes),
    }
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def desired_digest(res: DesiredResource) -> str:
    """The lockfile's ``spec_digest`` of ``res``: what the manifest asked for (spec with
    secret references, never values; remote name; protect; ignore_changes), in a canonical
    form, so reordering a list whose order means nothing is no change (plan exits 0 and
    drift keeps comparing).

    Not ``reconciler.state.json_digest``: this one keeps ``json.dumps``'s ASCII escapes and
    ``default=str``; lockfiles store its value, so it never changes."""
    return _digest(res, _canonical_spec(res))


def digest_matches(res: DesiredResource, recorded: str) -> bool:
    """Whether a lockfile's ``spec_digest`` records this manifest: its canonical digest, or
    the digest of the spec as written, which lockfiles stored before the canonical form, or
    the canonical digest of before an agent's tools and a deployment's resources were sorted
    in it (``REORDERABLE_LISTS``)."""
    if recorded in (desired_digest(res), _digest(res, res.spec)):
        return True
    return res.kind in REORDERABLE_LISTS and recorded == _digest(res, _canonical_spec(res, False))

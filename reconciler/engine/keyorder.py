"""The canonical key order of manifest documents, shared by ``reconciler fmt`` and import.

``key_order`` orders the keys of one mapping: ``kind, name, moved_from, protect,
ignore_changes, spec`` for a document, a fixed order per spec kind, then known keys by a
global rank, unknown keys last in their written order; free-form maps (``metadata``, a custom
tool's ``input_schema``) keep the order they were written in. ``canonical`` applies it to a
whole plain-data document. Pure: it reads no file and writes none (``app.fmt`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.engine.normalize import PACKAGE_MANAGERS

__all__ = [
    "CREDENTIAL_ORDER",
    "DOCUMENT_ORDER",
    "FREE_FORM",
    "KEY_RANK",
    "SPEC_ORDER",
    "canonical",
    "key_order",
]

DOCUMENT_ORDER: tuple[str, ...] = (
    "kind",
    "name",
    "moved_from",
    "protect",
    "ignore_changes",
    "spec",
)
SPEC_ORDER: dict[str, tuple[str, ...]] = {
    "Agent": (
        "name",
        "model",
        "description",
        "system",
        "tools",
        "mcp_servers",
        "skills",
        "execution_identity",
        "multiagent",
        "metadata",
    ),
    "Environment": ("name", "description", "scope", "config", "metadata"),
    "Vault": ("display_name", "metadata", "credentials"),
    "MemoryStore": ("name", "description", "metadata", "memories"),
    "Skill": ("source", "display_name"),
    "Deployment": (
        "name",
        "description",
        "agent",
        "environment",
        "vaults",
        "initial_events",
        "resources",
        "schedule",
        "budget",
        "metadata",
    ),
}
CREDENTIAL_ORDER: tuple[str, ...] = ("name", "display_name", "metadata", "auth")
#: Nested mappings: these keys first, in this order; others after, as written.
KEY_RANK: tuple[str, ...] = (
    "type",
    "id",
    "ref",
    "name",
    "path",
    "skill_id",
    "version",
    "mcp_server_name",
    "mcp_server_url",
    "secret_name",
    "url",
    "file_id",
    "memory_store_id",
    "display_name",
    "description",
    "expression",
    "timezone",
    "effort",
    "inference_geo",
    "speed",
    "enabled",
    "permission_policy",
    "default_config",
    "configs",
    "allowed_domains",
    "blocked_domains",
    "max_content_tokens",
    "url_sources",
    "user_location",
    "role_arn",
    "token",
    "access_token",
    "expires_at",
    "refresh",
    "client_id",
    "refresh_token",
    "token_endpoint",
    "token_endpoint_auth",
    "client_secret",
    "resource",
    "scope",
    "secret_value",
    "networking",
    "allowed_hosts",
    "allow_mcp_servers",
    "allow_package_managers",
    "injection_location",
    "body",
    "header",
    "packages",
    *PACKAGE_MANAGERS,
    "from_env",
    "from_file",
)
#: Keys whose value is a free-form map: its keys are data, never reordered.
FREE_FORM: frozenset[str] = frozenset({"metadata", "input_schema"})


def _ranked(keys: Sequence[str], order: Sequence[str]) -> list[str]:
    known = [k for k in order if k in keys]
    return known + [k for k in keys if k not in order]


def key_order(path: tuple[str | int, ...], keys: Sequence[str], kind: str | None) -> list[str]:
    """The canonical order of ``keys`` of the mapping at ``path`` in a document of ``kind``.

    Args:
        path: where the mapping sits: ``()`` is the document, ``("spec",)`` its spec,
            ``("spec", "credentials", 0)`` a credential; list indexes are ints.
        keys: the keys as written.
        kind: the document's ``kind:`` (``Agent``...), or None for a non-manifest document.

    Returns:
        The keys in canonical order; the keys as written when ``path`` is inside a free-form
        map or the document is not a manifest.

    Example: ``key_order(("spec",), ["system", "model"], "Agent") == ["model", "system"]``.
    """
    if kind not in SPEC_ORDER:
        return list(keys)
    if any(isinstance(p, str) and p in FREE_FORM for p in path):
        return list(keys)
    if path == ():
        return _ranked(keys, DOCUMENT_ORDER)
    if path == ("spec",):
        return _ranked(keys, SPEC_ORDER[kind])
    if kind == "Vault" and len(path) == 3 and path[:2] == ("spec", "credentials"):
        return _ranked(keys, CREDENTIAL_ORDER)
    return _ranked(keys, KEY_RANK)


def canonical(data: Any, kind: str | None = None, path: tuple[str | int, ...] = ()) -> Any:
    """A copy of a plain-data document with every mapping in canonical key order."""
    if path == () and isinstance(data, dict):
        kind = data.get("kind") if isinstance(data.get("kind"), str) else None
    if isinstance(data, dict):
        return {k: canonical(data[k], kind, path + (k,)) for k in key_order(path, list(data), kind)}
    if isinstance(data, list):
        return [canonical(v, kind, path + (i,)) for i, v in enumerate(data)]
    return data

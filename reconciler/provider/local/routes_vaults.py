"""HTTP routes of vaults and their credentials.

Secrets (``token``, ``access_token``, ``refresh_token``, ``client_secret``,
``secret_value``) are stored in a separate column and never appear in a response. A
credential's key (``mcp_server_url``, or ``secret_name`` for environment variables) is unique
among the vault's non-archived credentials (409); a vault holds at most 20 of them.
``auth.type`` is immutable; omitted auth fields keep their stored values. Archiving a
credential purges its secrets and frees its key. Deleting a vault deletes its credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from .context import Ctx, Edit, archive_record, new_object, require
from .crud import add_archive, add_create, add_delete, add_retrieve, add_update
from .defaults import check_metadata, patch_metadata, refuse_archived
from .errors import bad_request, conflict, not_found
from .hosts import mcp_server_key
from .ids import format_ts, now_ts, parse_ts
from .listing import Listed, list_objects
from .paging import json_response
from .schemas import CredentialCreate, CredentialUpdate, VaultCreate, VaultUpdate
from .store import Record, Store

MAX_CREDENTIALS = 20


def _expiry(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = parse_ts(value)
    except (ValueError, OverflowError):
        raise bad_request("auth.expires_at must be an RFC 3339 timestamp") from None
    if moment <= datetime.now(UTC):
        raise bad_request("auth.expires_at must be in the future")
    return format_ts(moment)


def _credential_key(auth: dict[str, Any]) -> tuple[str, str]:
    if auth["type"] == "environment_variable":
        return "secret_name", auth["secret_name"]
    return "mcp_server_url", auth["mcp_server_url"]


def _clashing(store: Store, vault_id: str, field: str, value: str) -> list[Record]:
    """The vault's active credentials with this key; an MCP server URL is the same server
    whatever the case of its scheme and host."""
    if field != "mcp_server_url":
        where = f"json_extract(data, '$.auth.{field}') = ?"
        return store.find("credential", where, [value], vault_id)
    where = f"lower(json_extract(data, '$.auth.{field}')) = lower(?)"
    key = mcp_server_key(value)
    found = store.find("credential", where, [value], vault_id)
    return [c for c in found if mcp_server_key(c.data["auth"][field]) == key]


def _create_auth(sent: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split create params into (public auth, secrets)."""
    kind = sent["type"]
    if kind == "static_bearer":
        return {"type": kind, "mcp_server_url": sent["mcp_server_url"]}, {"token": sent["token"]}
    if kind == "mcp_oauth":
        secrets: dict[str, Any] = {"access_token": sent["access_token"]}
        refresh = None
        if sent.get("refresh") is not None:
            r = sent["refresh"]
            secrets["refresh_token"] = r["refresh_token"]
            if "client_secret" in r["token_endpoint_auth"]:
                secrets["client_secret"] = r["token_endpoint_auth"]["client_secret"]
            refresh = {
                "client_id": r["client_id"],
                "token_endpoint": r["token_endpoint"],
                "token_endpoint_auth": {"type": r["token_endpoint_auth"]["type"]},
                "resource": r.get("resource"),
                "scope": r.get("scope") or None,
            }
        auth = {
            "type": kind,
            "mcp_server_url": sent["mcp_server_url"],
            "expires_at": _expiry(sent.get("expires_at")),
            "refresh": refresh,
        }
        return auth, secrets
    location = sent.get("injection_location") or {}
    injection = {
        "body": True if location.get("body") is None else location["body"],
        "header": True if location.get("header") is None else location["header"],
    }
    if not (injection["body"] or injection["header"]):
        raise bad_request("injection_location must enable body or header")
    auth = {
        "type": kind,
        "secret_name": sent["secret_name"],
        "injection_location": injection,
        "networking": dict(sent["networking"]),
    }
    return auth, {"secret_value": sent["secret_value"]}


def _update_auth(
    stored: dict[str, Any], secrets: dict[str, Any], sent: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge an auth update onto the stored (public auth, secrets)."""
    if sent["type"] != stored["type"]:
        raise bad_request(
            f"credential auth.type cannot change from {stored['type']} to {sent['type']}"
        )
    auth, secrets = dict(stored), dict(secrets)
    kind = sent["type"]
    if kind == "static_bearer":
        if sent.get("token") is not None:
            secrets["token"] = sent["token"]
    elif kind == "mcp_oauth":
        if sent.get("access_token") is not None:
            secrets["access_token"] = sent["access_token"]
        if "expires_at" in sent:
            auth["expires_at"] = _expiry(sent["expires_at"])
        if "refresh" in sent and sent["refresh"] is None:
            auth["refresh"] = None
            secrets.pop("refresh_token", None)
            secrets.pop("client_secret", None)
        elif sent.get("refresh") is not None:
            if auth.get("refresh") is None:
                raise bad_request("this credential has no refresh config to update")
            r, refresh = sent["refresh"], dict(auth["refresh"])
            if r.get("refresh_token") is not None:
                secrets["refresh_token"] = r["refresh_token"]
            if "scope" in r:
                refresh["scope"] = r["scope"] or None
            tea = r.get("token_endpoint_auth")
            if tea is not None:
                # the SDK: "The credential must already use client_secret_basic or
                # client_secret_post. It keeps its current token_endpoint_auth type, even if
                # the type sent with this secret is the other one."
                stored_type = refresh["token_endpoint_auth"]["type"]
                if stored_type not in ("client_secret_basic", "client_secret_post"):
                    raise bad_request(
                        "refresh.token_endpoint_auth: a client_secret replaces the stored one "
                        f"of a client_secret_basic or client_secret_post credential; this one "
                        f"authenticates with {stored_type!r}"
                    )
                if tea.get("client_secret") is not None:
                    secrets["client_secret"] = tea["client_secret"]
            auth["refresh"] = refresh
    else:
        if sent.get("secret_value") is not None:
            secrets["secret_value"] = sent["secret_value"]
        if sent.get("networking") is not None:
            auth["networking"] = dict(sent["networking"])
        location = sent.get("injection_location") or {}
        injection = dict(auth["injection_location"])
        for key in ("body", "header"):
            if location.get(key) is not None:
                injection[key] = location[key]
        if not (injection["body"] or injection["header"]):
            raise bad_request("injection_location must keep body or header enabled")
        auth["injection_location"] = injection
    return auth, secrets


def _credential(store: Store, vault_id: str, credential_id: str) -> Record:
    require(store, "vault", vault_id)
    record = store.get(credential_id, "credential")
    if record is None or record.parent_id != vault_id:
        raise not_found("credential", credential_id)
    return record


router = APIRouter(tags=["vaults"])


def _new_vault(store: Store, sent: dict[str, Any]) -> dict[str, Any]:
    return {
        "display_name": sent["display_name"],
        "metadata": check_metadata(sent.get("metadata") or {}),
    }


add_create(router, "vault", "Create a vault", VaultCreate, _new_vault)


add_retrieve(router, "vault", "Retrieve a vault")


def _change_vault(change: Edit, sent: dict[str, Any]) -> None:
    if sent.get("display_name") is not None:
        change.updated["display_name"] = sent["display_name"]


add_update(router, "vault", "Update a vault", VaultUpdate, _change_vault)


@router.get("/v1/vaults", summary="List vaults")
async def list_vaults(ctx: Ctx, window: Listed) -> Response:
    return list_objects(ctx.store, "vault", "vaults", window)


add_archive(router, "vault", "Archive a vault")


add_delete(
    router,
    "vault",
    "Delete a vault and its credentials",
    contents=lambda store, vault_id: store.delete_children("credential", vault_id),
)


cred = "/v1/vaults/{vault_id}/credentials"


@router.post(cred, summary="Create a credential")
async def create_credential(ctx: Ctx, vault_id: str, body: CredentialCreate) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    with store.write():
        vault = require(store, "vault", vault_id)
        refuse_archived("vault", vault.data)
        auth, secrets = _create_auth(sent["auth"])
        field, value = _credential_key(auth)
        clash = _clashing(store, vault_id, field, value)
        if clash:
            raise conflict(f"credential {clash[0].id} already uses {field} {value!r}")
        if store.count("credential", vault_id) >= MAX_CREDENTIALS:
            raise bad_request(f"a vault holds at most {MAX_CREDENTIALS} active credentials")
        fields = {
            "vault_id": vault_id,
            "display_name": sent.get("display_name"),
            "metadata": check_metadata(sent.get("metadata") or {}),
            "auth": auth,
        }
        credential = new_object("credential", "vault_credential", fields)
        store.insert("credential", credential, parent_id=vault_id, secrets=secrets)
    return json_response(credential)


@router.get(cred + "/{credential_id}", summary="Retrieve a credential (secrets omitted)")
async def retrieve_credential(ctx: Ctx, vault_id: str, credential_id: str) -> Response:
    store = ctx.store
    return json_response(_credential(store, vault_id, credential_id).data)


@router.post(cred + "/{credential_id}", summary="Update a credential")
async def update_credential(
    ctx: Ctx, vault_id: str, credential_id: str, body: CredentialUpdate
) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    with store.write():
        record = _credential(store, vault_id, credential_id)
        current = record.data
        refuse_archived("credential", current)
        updated = dict(current)
        secrets = record.secrets
        if sent.get("auth") is not None:
            updated["auth"], secrets = _update_auth(current["auth"], record.secrets, sent["auth"])
        if "display_name" in sent:
            updated["display_name"] = sent["display_name"]
        updated["metadata"] = patch_metadata(current["metadata"], sent.get("metadata"))
        if updated == current and secrets == record.secrets:
            return json_response(current)
        updated["updated_at"] = now_ts()
        store.replace(credential_id, updated, secrets=secrets)
    return json_response(updated)


@router.get(cred, summary="List a vault's credentials")
async def list_credentials(ctx: Ctx, vault_id: str, window: Listed) -> Response:
    store = ctx.store
    require(store, "vault", vault_id)
    tag = f"credentials:{vault_id}"
    return list_objects(store, "credential", tag, window, parent_id=vault_id)


@router.post(cred + "/{credential_id}/archive", summary="Archive a credential (purges secrets)")
async def archive_credential(ctx: Ctx, vault_id: str, credential_id: str) -> Response:
    store = ctx.store
    with store.write():
        data = archive_record(store, _credential(store, vault_id, credential_id), secrets={})
    return json_response(data)


@router.delete(cred + "/{credential_id}", summary="Delete a credential")
async def delete_credential(ctx: Ctx, vault_id: str, credential_id: str) -> Response:
    store = ctx.store
    with store.write():
        _credential(store, vault_id, credential_id)
        store.delete(credential_id)
    return json_response({"id": credential_id, "type": "vault_credential_deleted"})


@router.post(
    cred + "/{credential_id}/mcp_oauth_validate",
    summary="Probe an mcp_oauth credential (always 'unknown' locally)",
)
async def validate_credential(ctx: Ctx, vault_id: str, credential_id: str) -> Response:
    store = ctx.store
    record = _credential(store, vault_id, credential_id)
    if record.data["auth"]["type"] != "mcp_oauth":
        raise bad_request(f"credential {credential_id} is not an mcp_oauth credential")
    # The local provider never calls out to the network, so it cannot judge the token.
    return json_response(
        {
            "type": "vault_credential_validation",
            "credential_id": credential_id,
            "vault_id": vault_id,
            "status": "unknown",
            "has_refresh_token": "refresh_token" in record.secrets,
            "mcp_probe": None,
            "refresh": None,
            "validated_at": now_ts(),
        }
    )

"""Send one write safely: a lost answer resolved before any resend, a refusal explained.

The executor decides which write an action needs; this module sends it. A create whose answer
was lost is looked up by its ownership metadata and adopted rather than sent twice, an agent
update carries the live version so a 409 never overwrites a concurrent edit, and a refused
create or a stale update fails with a sentence that says what holds the name or what changed.
It never retries on its own schedule (the provider client's retry policy does, calling the
``resolve`` given here first), never orders or records actions and never touches the
filesystem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.engine.interface import ProviderWriter
from reconciler.engine.model import Action, Create, Replace, Update
from reconciler.engine.ownership import describe_owner, key_taken_remedy, name_taken_remedy
from reconciler.errors import AmbiguousWriteError, ConflictError, NotFoundError, ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_INFO, owned_address

__all__ = ["ActionFailed", "SafeWrites", "describe_error"]

#: agent fields that change on every write and say nothing about what a person edited
_BOOKKEEPING_FIELDS = frozenset(
    {"version", "updated_at", "created_at", "archived_at", "id", "type"}
)


class ActionFailed(Exception):
    """Fails one action with a finished sentence."""


@dataclass(frozen=True)
class SafeWrites:
    """The writes of one apply to ``writer``, for the objects ``project`` owns."""

    writer: ProviderWriter
    project: str

    async def send_create(
        self,
        action: Create | Replace,
        body: JSON,
        parent_id: str | None,
        *,
        exclude_id: str | None,
    ) -> tuple[JSON, bool]:
        """Create, adopting a twin instead of resending blind. Returns (live, adopted)."""
        adopted = False

        async def resolve() -> JSON | None:
            nonlocal adopted
            found = await self.find_created(action, parent_id, exclude_id)
            adopted = found is not None
            return found

        # a kind without metadata cannot be found by tags: the writer's own lookup (a skill
        # upload's, by content) resolves a lost create
        tagged = KIND_INFO[action.kind].has_metadata
        try:
            live = await self.writer.create(
                action.kind, body, parent_id=parent_id, resolve=resolve if tagged else None
            )
        except AmbiguousWriteError as e:
            raise ActionFailed(
                f"create failed: {describe_error(e)}; the next apply looks for it by its metadata "
                "before creating it again"
            ) from e
        except ConflictError as e:
            # an earlier attempt whose answer was lost may hold the name: ours by its tags
            try:
                found = await self.find_created(action, parent_id, exclude_id)
            except ProviderError:
                found = None
            if found is not None:
                return found, True
            raise await self.refused_create(action, body, parent_id, e) from e
        return live, adopted

    async def find_created(
        self,
        action: Create | Replace,
        parent_id: str | None,
        exclude_id: str | None,
    ) -> JSON | None:
        """The live object a lost create of ``action`` made, by its ownership metadata.

        Only this project's tags for this address prove that an object is the one a lost
        create made: a same-name object without them (an environment made in the console)
        is someone else's, never adopted here (``reconciler import`` adopts on purpose).
        """
        objects = await self.writer.list_all(action.kind, parent_id=parent_id)
        live = sorted(
            (o for o in objects if not o.get("archived_at") and o.get("id") != exclude_id),
            key=lambda o: (str(o.get("created_at") or ""), str(o.get("id"))),
        )
        for obj in live:
            if owned_address(obj, self.project) == action.address:
                return dict(obj)
        return None

    async def refused_create(
        self, action: Create | Replace, body: JSON, parent_id: str | None, error: ConflictError
    ) -> ActionFailed:
        """A 409 on create with nothing of ours to adopt: say what holds the name or key."""
        detail = describe_error(error)
        holder = None
        try:
            objects = await self.writer.list_all(action.kind, parent_id=parent_id)
        except ProviderError:
            objects = []
        # what makes the create clash: an environment's name, a credential's key
        clash = _credential_key if action.kind == "credential" else _name
        unique = action.kind in ("environment", "credential")
        for obj in objects:
            if unique and not obj.get("archived_at") and clash(obj) and clash(obj) == clash(body):
                holder = obj
        if holder is None:
            return ActionFailed(f"create failed: {detail}")
        what = (
            f"an environment named {body.get('name')!r}"
            if action.kind == "environment"
            else f"a credential for {_credential_key(body)} in this vault"
        )
        refused = (
            f"create refused by the provider (409): {what} already exists ({holder['id']}) "
            f"and belongs to {describe_owner(holder)}, so it was not adopted."
        )
        if action.kind == "environment":
            remedy = name_taken_remedy(action.address, holder, self.project)
            return ActionFailed(f"{refused} {remedy}")
        return ActionFailed(f"{refused} {key_taken_remedy(action.address, holder, self.project)}")

    async def send_update(self, action: Update, body: JSON, parent_id: str | None) -> JSON:
        guarded = action.kind == "agent" and "version" in body

        async def resolve() -> JSON | None:
            """The live agent if the lost update made the version it would have made."""
            live = await self.writer.retrieve(action.kind, action.remote_id, parent_id=parent_id)
            expected = action.to_version or int(body["version"]) + 1
            return dict(live) if live.get("version") == expected else None

        try:
            return await self.writer.update(
                action.kind,
                action.remote_id,
                body,
                parent_id=parent_id,
                resolve=resolve if guarded else None,
            )
        except ConflictError as e:
            if guarded:
                raise ActionFailed(await self.conflict_message(action, body, e)) from e
            raise
        except AmbiguousWriteError as e:
            raise ActionFailed(
                f"the update may or may not have been applied ({describe_error(e)}); run "
                "`reconciler plan` to see whether it was, then apply again"
            ) from e

    async def conflict_message(self, action: Update, body: JSON, error: ConflictError) -> str:
        expected = body.get("version")
        tail = "nothing was overwritten. Run `reconciler plan` again."
        try:
            live = await self.writer.retrieve("agent", action.remote_id)
        except ProviderError:
            return (
                f"{action.address} was changed outside this plan (the provider refused "
                f"version {expected} as stale: {describe_error(error)}); {tail}"
            )
        changed = await self.changed_fields(action.remote_id, expected, live)
        what = f"; changed: {', '.join(changed)}" if changed else ""
        return (
            f"{action.address} was changed outside this plan: live version is now "
            f"{live.get('version')} (updated {live.get('updated_at')}), the plan expected "
            f"{expected}{what}; {tail}"
        )

    async def changed_fields(self, agent_id: str, expected: Any, live: JSON) -> list[str]:
        """Top-level fields that differ between the expected version and the live one."""
        try:
            versions = await self.writer.list_versions(agent_id)
        except ProviderError:
            return []
        old = next((v for v in versions if v.get("version") == expected), None)
        if old is None:
            return []
        keys = (set(old) | set(live)) - _BOOKKEEPING_FIELDS
        return sorted(k for k in keys if old.get(k) != live.get(k))

    async def archive_or_delete(
        self, action: Action, remote_id: str, parent_id: str | None, *, delete: bool
    ) -> JSON | None:
        """Archive (or delete) one object; already gone (404) counts as done."""
        try:
            if delete:
                await self.writer.delete(action.kind, remote_id, parent_id=parent_id)
                return None
            return await self.writer.archive(action.kind, remote_id, parent_id=parent_id)
        except NotFoundError:
            return None


def _name(obj: JSON) -> str | None:
    name = obj.get("name")
    return str(name) if name else None


def _credential_key(obj: JSON) -> str | None:
    """A credential's key, unique among the active credentials of its vault."""
    auth = obj.get("auth")
    if not isinstance(auth, dict):
        return None
    key = auth.get("mcp_server_url") or auth.get("secret_name")
    return str(key) if key else None


def describe_error(error: BaseException) -> str:
    """A provider error as one clause: its message, with status and request id once."""
    if not isinstance(error, ProviderError):
        return f"{type(error).__name__}: {error}"
    message = error.message or type(error).__name__
    if error.request_id and error.request_id in message:
        return message  # the client already said where (status, type, request id)
    bits = [str(error.status)] if error.status is not None else []
    bits += [b for b in (error.error_code, error.request_id and f"request {error.request_id}") if b]
    return f"{message} ({', '.join(bits)})" if bits else message

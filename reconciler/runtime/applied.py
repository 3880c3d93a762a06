"""Look up what ``reconciler apply`` created, by address, from the lockfile.

A program that runs the agents kept in the manifests needs their remote ids; the lockfile
(``state/reconciler.lock`` by default, ``RECONCILER_LOCKFILE``) records them per address.
``find_applied`` reads it fresh on every call (it is small, and an apply may have run since)
and answers with the lockfile entry, or a ``NotApplied`` error saying what to do;
``AppliedLookups`` gives ``ManagedRuntime`` its ``agent("coder")``-style methods over it.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler.errors import ReconcilerError
from reconciler.kinds import DEFAULT_LOCKFILE, KIND_INFO, TOP_LEVEL_KINDS, address_of, kind_of

if TYPE_CHECKING:
    from types import FrameType

    from reconciler.state import LockEntry

__all__ = [
    "DEFAULT_LOCKFILE",
    "LOOKUP_KINDS",
    "AppliedLookups",
    "NotApplied",
    "OriginMismatch",
    "find_applied",
]

#: The kinds a program looks up by name.
LOOKUP_KINDS = TOP_LEVEL_KINDS
#: The kinds ``AppliedLookups`` has a method of their own for (``agent("coder")``...).
_BY_NAME = ("agent", "environment", "vault", "deployment", "memory_store")


class NotApplied(ReconcilerError, LookupError):
    """The address is not in the lockfile: never applied, another project, a typo."""


class OriginMismatch(UserWarning):
    """The lockfile was applied to another provider than the runtime talks to."""


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def lookup_address(kind: str, name: str) -> str:
    """``coder`` or ``agent.coder`` -> ``agent.coder``; another kind's address is refused."""
    if kind not in LOOKUP_KINDS:
        raise ValueError(f"kind must be one of {', '.join(LOOKUP_KINDS)}, got {kind!r}")
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{_a(kind)} name is a non-empty string, got {name!r}")
    name = name.strip()  # a variable's trailing newline: names and addresses hold no space
    prefix, dot, _ = name.partition(".")
    address = name if dot and prefix in KIND_INFO else address_of(kind, name)
    prefix = address.partition(".")[0]
    if prefix != kind:
        raise ValueError(f"{name} is {_a(prefix)} address, not {_a(kind)} one")
    if kind == "vault" and ".credential." in address:  # vault.V.credential.C: a credential
        vault = address.split(".credential.")[0].removeprefix("vault.")
        raise ValueError(
            f"{address} is a credential address, not a vault one: use vault({vault!r}) for "
            "its vault's id, or applied(address).id for the credential's"
        )
    return address


def _callers_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this package, so that a warning names
    the program's line whichever lookup (``agent``, ``applied``, ``memory_store_resource``...)
    it called, through however many of this package's frames."""
    package = os.path.dirname(__file__)
    # level 1 is the frame that warns: the caller of this function
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == package:
        frame, level = frame.f_back, level + 1
    return level


def _same_origin(recorded: str, origin: str, here: Path) -> bool:
    from reconciler.provider.origin import same_origin

    return same_origin(recorded, origin, here)


def find_applied(
    lockfile_path: str | os.PathLike[str],
    project: str,
    address: str,
    backend: str | None = None,
    origin: str | None = None,
) -> LockEntry:
    """The lockfile entry of ``address`` (from the database ``backend`` when given).

    ``origin``: the provider the caller talks to, as a lockfile records it; a lockfile
    applied to another provider holds ids this one most likely does not know, and an
    ``OriginMismatch`` warning says so (the same database may be served at another URL).

    Raises:
        ValueError: ``address`` is not an address (``KIND.NAME``, e.g. ``agent.coder``).
        NotApplied: the lockfile has no such address (the message names the lockfile and
            project, and close addresses when there are some), or there is no lockfile at
            all where it was looked for (the message says where, from which directory).
        LockfileError: the lockfile is unreadable or belongs to another project.
    """
    from reconciler.state import open_location  # pydantic models: only when used

    kind = _kind_of(address)
    address = address.strip()  # a variable's trailing newline: addresses hold no space
    location = open_location(backend, lockfile_path, project)
    try:
        lockfile = location.read()
    finally:
        location.close()
    here = Path(lockfile_path).parent  # an embedded provider's origin is relative to it
    if (
        origin is not None
        and lockfile.origin is not None
        and not _same_origin(lockfile.origin, origin, here)
    ):
        from reconciler.provider.origin import describe_origin

        warnings.warn(
            f"{address}: {'the state in' if backend else 'the lockfile'} {location.name} "
            "was applied to "
            f"{describe_origin(lockfile.origin, here)}, but this runtime talks to "
            f"{describe_origin(origin, here)}, which probably does not know its ids. Pass "
            "provider_url= (or set RECONCILER_PROVIDER_URL) for that provider, or db_path= "
            "for another embedded database",
            OriginMismatch,
            stacklevel=_callers_stacklevel(),
        )
    entry = lockfile.resources.get(address)
    if entry is not None:
        return entry
    if not backend and not lockfile.resources and not Path(lockfile_path).exists():
        # A program run from another directory than the project's finds no lockfile at the
        # relative default: "apply the manifests first" would send the user the wrong way.
        raise NotApplied(
            f"{address}: there is no lockfile at {lockfile_path} (looked for in "
            f"{Path.cwd()}); run the program from the project directory, or pass "
            "lockfile= (or set RECONCILER_LOCKFILE) to the lockfile `reconciler apply` wrote "
            "(and, for the embedded provider, db_path= to its database)"
        )
    same_kind = sorted(a for a in lockfile.resources if _kind_of(a) == kind)
    # names compared without their kind: a shared "agent." would make any name look close
    by_name = {a.removeprefix(f"{kind}."): a for a in same_kind}
    close = [
        by_name[n]
        for n in difflib.get_close_matches(address.removeprefix(f"{kind}."), by_name, n=3)
    ]
    if close:
        hint = f"; did you mean {' or '.join(close)}?"
    elif same_kind:
        hint = f"; it has {', '.join(same_kind[:10])}"
    else:
        hint = f"; it has no {kind} yet"
    # a database's name says its project already
    where = (
        f"the state in {location.name}"
        if backend
        else f"the lockfile {location.name} (project {project})"
    )
    name = address.removeprefix(f"{kind}.")
    other = next((a for a in sorted(lockfile.resources) if a.partition(".")[2] == name), None)
    if other is not None:  # agent("nightly-review") for the deployment: applied, as that
        other_kind = other.partition(".")[0]
        use = f"{other_kind}({name!r})" if other_kind in _BY_NAME else f"applied({other!r}).id"
        raise NotApplied(
            f"{address} is not in {where}; {name} is {other} there: use {use} for its id"
        )
    raise NotApplied(
        f"{address} is not in {where}: apply the manifests first (`reconciler apply`){hint}"
    )


def _kind_of(address: str) -> str:
    """The kind of a lockfile address; anything else is the caller's mistake.

    Raises:
        ValueError: not ``KIND.NAME`` (nor a credential's ``vault.V.credential.C``).
    """
    try:
        kind = kind_of(address) if isinstance(address, str) and "." in address else None
    except ValueError:
        kind = None
    if kind is None:
        raise ValueError(
            f"{address!r} is not an address: applied() takes KIND.NAME (kinds: "
            f"{', '.join(LOOKUP_KINDS)}), e.g. 'agent.coder'; for a name, use agent('coder'), "
            "environment(...) and the like"
        )
    return kind


class AppliedLookups:
    """Lookups by name of what apply created; the class using it sets ``lockfile``/``project``."""

    lockfile: os.PathLike[str] | str
    project: str

    def applied(self, address: str) -> LockEntry:
        """The lockfile entry ``reconciler apply`` recorded for ``address``.

        Reads ``self.lockfile`` fresh on each call. ``entry.id`` is the remote id; an
        agent's ``entry.version`` is its version after the last apply, a deployment's
        ``entry.pins`` the agent version it runs.

        Raises:
            ValueError: ``address`` is not ``KIND.NAME`` (use ``agent(name)`` for a name).
            NotApplied: the address is not in the lockfile, or there is no lockfile where
                it was looked for (a ``LookupError``).
            LockfileError: the lockfile is unreadable or another project's.
        """
        backend = getattr(self, "backend", None) or os.environ.get("RECONCILER_BACKEND") or None
        return find_applied(self.lockfile, self.project, address, backend, self.provider_origin())

    def provider_origin(self) -> str | None:
        """The provider the lookups are for, as a lockfile records it; None: any."""
        return None

    def agent(self, name: str) -> str:
        """The id of the applied Agent ``name`` (``coder`` or ``agent.coder``).

        Example:
            >>> session_id = await rt.create_session(rt.agent("coder"), rt.environment("dev"))
        """
        return self.applied(lookup_address("agent", name)).id

    def environment(self, name: str) -> str:
        """The id of the applied Environment ``name``."""
        return self.applied(lookup_address("environment", name)).id

    def vault(self, name: str) -> str:
        """The id of the applied Vault ``name``."""
        return self.applied(lookup_address("vault", name)).id

    def deployment(self, name: str) -> str:
        """The id of the applied Deployment ``name``."""
        return self.applied(lookup_address("deployment", name)).id

    def memory_store(self, name: str) -> str:
        """The id of the applied MemoryStore ``name``."""
        return self.applied(lookup_address("memory_store", name)).id

    def memory_store_resource(
        self,
        name: str,
        *,
        access: Literal["read_write", "read_only"] | None = None,
        instructions: str | None = None,
    ) -> dict[str, str]:
        """The session resource that mounts the applied MemoryStore ``name``.

        Example:
            >>> notes = rt.memory_store_resource("notes", access="read_only")
            >>> await rt.create_session(rt.agent("coder"), rt.environment("dev"), resources=[notes])
        """
        resource = {"type": "memory_store", "memory_store_id": self.memory_store(name)}
        if access is not None:
            resource["access"] = access
        if instructions is not None:
            resource["instructions"] = instructions
        return resource

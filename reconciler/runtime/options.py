"""The keywords ``ManagedRuntime()`` takes: its own, its client's, and the error for others;
and the checks of their types (``check_arguments``, ``check_config``), and of the ids,
version pins and lists its methods take (``check_id``, ``check_version``, ``session_list``),
at the call.

``CLIENT_OPTIONS`` are the ``ProviderClient`` keywords a runtime passes on to the client it
builds; ``unknown_keywords`` words the ``TypeError`` for any keyword neither takes, with the
likely meaning (the official SDK's name for it, or a close spelling). No I/O.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.runtime.config import ManagedConfig

__all__ = [
    "CLIENT_OPTIONS",
    "check_arguments",
    "check_config",
    "check_id",
    "check_version",
    "session_list",
    "unknown_keywords",
]

#: The ``ProviderClient`` keywords a runtime passes to the client it builds.
CLIENT_OPTIONS = frozenset(
    {
        "timeout",
        "max_retries",
        "backoff_base",
        "backoff_max",
        "rate_limiter",
        "max_connections",
        "max_rate_limit_retries",
        "transport",
    }
)
_OWN_OPTIONS = (
    "config",
    "provider_url",
    "api_key",
    "db_path",
    "client",
    "lockfile",
    "project",
    "backend",
)
#: Keywords of the official SDK's client, and what they are called here.
_SDK_NAMES = {"base_url": "provider_url", "auth_token": "api_key"}


def unknown_keywords(names: Sequence[str]) -> str:
    """The error for keywords neither the runtime nor its client takes, with likely meanings."""
    hints = []
    for name in names:
        close = _SDK_NAMES.get(name) or next(
            iter(difflib.get_close_matches(name, [*_OWN_OPTIONS, *sorted(CLIENT_OPTIONS)], 1)),
            None,
        )
        hints.append(f"{name!r}" + (f" (did you mean {close}=?)" if close else ""))
    return (
        f"ManagedRuntime() got unexpected keyword argument(s) {', '.join(hints)}; it takes "
        f"{', '.join(_OWN_OPTIONS)} and the client options {', '.join(sorted(CLIENT_OPTIONS))}"
    )


def check_config(config: object) -> None:
    """A ``TypeError`` for a config that is no ``ManagedConfig`` (None is the runtime's)."""
    if config is not None and not isinstance(config, ManagedConfig):
        hint = (
            "; a provider URL is given as provider_url=..."
            if isinstance(config, str) and "://" in config
            else ""
        )
        raise TypeError(f"config must be a ManagedConfig, not {type(config).__name__}{hint}")


def check_arguments(*, config: object, db_path: object, lockfile: object, **texts: object) -> None:
    """A ``TypeError`` naming the first constructor argument of the wrong type, at the call
    rather than far from it (an ``AttributeError`` inside, or a value kept until used)."""
    check_config(config)
    for name, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string or None, not {type(value).__name__}")
    for name, value in (("db_path", db_path), ("lockfile", lockfile)):
        if value is not None and not isinstance(value, str | os.PathLike):
            raise TypeError(
                f"{name} must be a path (str or os.PathLike) or None, not {type(value).__name__}"
            )


def check_id(kind: str, given: object) -> None:
    """A ``TypeError`` for a ``kind`` id that is no string, a ``ValueError`` for an empty one."""
    if not isinstance(given, str):
        raise TypeError(
            f"{kind} id must be a string (such as the one create_{kind}() returns), "
            f"not {type(given).__name__}"
        )
    # An empty id (an unset environment variable) is a mistake: taking it for "the
    # remembered one" would delete or archive the wrong object. The SDK refuses it too.
    if not given.strip():
        raise ValueError(
            f"empty {kind} id {given!r}; pass an id, or None for the "
            f"one this runtime remembers ({kind}_id)"
        )


def check_version(pin: object) -> None:
    """A ``TypeError`` for an agent version pin that is no number, a ``ValueError`` for one
    below 1 (None, the latest, passes)."""
    if pin is not None and (isinstance(pin, bool) or not isinstance(pin, int) or pin < 1):
        error = TypeError if not isinstance(pin, int) or isinstance(pin, bool) else ValueError
        raise error(
            f"version is an agent version number (1, 2, ...), or None for the latest; got {pin!r}"
        )


def session_list(
    name: str, value: object, item: type[Any], default: Iterable[Any] = ()
) -> list[Any]:
    """``create_session``'s list ``name`` (``vault_ids`` of strings, ``resources`` of dicts)
    as a list, ``default`` when None: a ``TypeError`` for one item given where the list goes
    (a string is a sequence of strings: each character went as a vault id) or an item of
    another type. The message shows no value (a resource may hold a repository's token)."""
    if value is None:
        return list(default)
    what = "strings (ids)" if item is str else "objects (dicts)"
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(
            f"create_session {name} must be a list of {what}, not {type(value).__name__}; "
            f"for one, pass {name}=[...]"
        )
    items = list(value)
    for index, each in enumerate(items):
        if not isinstance(each, item) or (item is str and not each):
            raise TypeError(
                f"create_session {name} must be a list of {what}; item {index} is "
                f"{'empty' if each == '' else type(each).__name__}"
            )
    return items

"""Secret references: how a manifest names a secret, and how the value is read at apply time.

A secret field in a manifest is ``{from_env: VAR}`` or ``{from_file: PATH}``; an inline string
is an error that never repeats the string. ``resolve_secret`` is the only place that reads a
secret value, and its errors name the variable or file, never the value.
"""

from __future__ import annotations

import collections.abc
import errno
import functools
import os
import re
import typing
from collections.abc import Iterator
from difflib import get_close_matches
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, Field, model_validator

from reconciler.errors import ManifestError, ManifestIssue

from .fields import SpecModel, fail
from .files import MAX_SECRET_BYTES, FileRefused, read_limited
from .yamlsource import SourceLocation

INLINE_SECRET_MESSAGE = "inline secret: use {from_env: VAR} or {from_file: PATH}"
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOURCES = ("from_env", "from_file")
_EMPTY_SOURCE = {"from_env": "name of the environment variable", "from_file": "path of the file"}


class SecretRef(SpecModel):
    """Where a secret comes from: exactly one of an environment variable or a file.

    ``from_file`` paths are relative to the manifests directory (``ManifestSet.base_dir``)
    and must stay inside the repository (``secret_file``).
    """

    model_config = SpecModel.model_config | {
        "json_schema_extra": {
            "oneOf": [{"required": ["from_env"]}, {"required": ["from_file"]}],
        }
    }

    from_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the secret.",
        json_schema_extra={"pattern": _ENV_NAME_RE.pattern},
    )
    from_file: str | None = Field(
        default=None,
        min_length=1,
        description="Path of a file holding the secret, relative to the manifests directory "
        "and inside the repository (its git work tree, else the manifests directory); "
        "a leading byte-order mark and trailing newlines are stripped.",
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_inline(cls, data: Any) -> Any:
        if isinstance(data, str):
            fail(INLINE_SECRET_MESSAGE)
        if not isinstance(data, dict | BaseModel):
            fail("a secret must be a mapping: {from_env: VAR} or {from_file: PATH}")
        if isinstance(data, dict):
            unknown = [str(key) for key in data if key not in _SOURCES]
            if unknown:
                # never name the key: `token: {ghp_...}` puts the secret itself there
                close = get_close_matches(unknown[0], _SOURCES, n=1, cutoff=0.7)
                hint = f"; did you mean {close[0]}?" if close else ""
                fail(
                    "a secret takes only from_env or from_file (other keys are not shown "
                    f"here, as they may hold the secret){hint}"
                )
            for key, what in _EMPTY_SOURCE.items():
                if key in data and data[key] is None:  # `{from_env: }`: not filled in yet
                    fail(f"{key} is empty: give the {what} holding the secret", key)
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.from_env is None) == (self.from_file is None):
            fail("give exactly one of from_env or from_file")
        if self.from_env is not None and not _ENV_NAME_RE.match(self.from_env):
            fail(
                "from_env must be an environment variable name (letters, digits, '_', "
                "not starting with a digit)",
                "from_env",
            )
        return self

    def __str__(self) -> str:
        return f"env:{self.from_env}" if self.from_env is not None else f"file:{self.from_file}"


def iter_secret_refs(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Yield ``(path, ref)`` for every secret reference inside a spec, in field order.

    Example: a static_bearer credential yields ``("auth.token", SecretRef(from_env=...))``;
    list items appear as ``resources[0].authorization_token``.
    """
    for name in _secret_fields(type(model)):
        yield from _walk(getattr(model, name), f"{prefix}{name}")


@functools.cache
def _secret_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` whose values may hold a secret reference where ``_walk``
    looks (the field itself, a model inside it, an item of a list or tuple of them), in
    field order: an agent's or an environment's spec has none, and walking every field of
    1,000 of them took ~7 ms of a plan."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if _may_hold_secret(info.annotation, set())
    )


def _may_hold_secret(annotation: Any, seen: set[type]) -> bool:
    """Whether a value of this type may be or hold a ``SecretRef`` where ``_walk`` looks;
    True for anything it cannot tell (``Any``, an unresolved name, an unknown class)."""
    if annotation in _NO_SECRET:
        return False
    if isinstance(annotation, type):
        if issubclass(annotation, SecretRef):
            return True
        if issubclass(annotation, BaseModel):
            if annotation in seen:
                return False  # already being asked, further up
            seen.add(annotation)
            return any(
                _may_hold_secret(info.annotation, seen) for info in annotation.model_fields.values()
            )
        if issubclass(annotation, str | int | float | bool | bytes | dict):
            return False  # a scalar, or a mapping (``_walk`` does not look into one)
        if issubclass(annotation, Enum):
            return False
    origin = typing.get_origin(annotation)
    if origin is typing.Literal or origin is dict or origin is collections.abc.Mapping:
        return False
    if origin is typing.Annotated:  # the type, without its validators and constraints
        return _may_hold_secret(typing.get_args(annotation)[0], seen)
    if origin is None:
        return True
    return any(_may_hold_secret(arg, seen) for arg in typing.get_args(annotation))


#: types that hold no secret reference
_NO_SECRET: tuple[Any, ...] = (None, type(None))


def _walk(value: Any, path: str) -> Iterator[tuple[str, SecretRef]]:
    if isinstance(value, SecretRef):
        yield path, value
    elif isinstance(value, BaseModel):
        yield from iter_secret_refs(value, path + ".")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _raise(message: str, location: SourceLocation | None, field_path: str) -> NoReturn:
    where = location or SourceLocation("<secret>", 0, 0)
    raise ManifestError([ManifestIssue(where.file, where.line, where.col, message, field_path)])


def resolve_secret(
    ref: SecretRef,
    base_dir: str | Path,
    *,
    location: SourceLocation | None = None,
    field_path: str = "",
    root: Path | None = None,
) -> str:
    """Read a secret's value from its environment variable or file.

    File contents lose trailing ``\\n``/``\\r\\n`` (``echo token > file`` is the common way
    to write one); nothing else is changed.

    Args:
        ref: the reference from the manifest.
        base_dir: the directory relative ``from_file`` paths start from.
        location: where the reference is written, for the error message.
        field_path: the field path of the reference, for the error message.
        root: the directory ``from_file`` must stay in (``secret_file``); default the git
            work tree holding ``base_dir``, else ``base_dir``.

    Returns:
        The secret value.

    Raises:
        ManifestError: the variable is unset, empty, white space only or not UTF-8, or
            the file is outside the repository, missing, unreadable, not a regular file,
            larger than ``MAX_SECRET_BYTES``, not UTF-8, empty or white space only. The
            message names the variable or file, never a value.
    """
    if ref.from_env is not None:
        value = os.environ.get(ref.from_env)
        if value is None:
            _raise(
                f"environment variable {ref.from_env} is not set; export it with the secret "
                "before running",
                location,
                field_path,
            )
        if not value:
            _raise(f"environment variable {ref.from_env} is empty", location, field_path)
        if value.isspace():  # a paste that lost the token: none is white space only
            _raise(
                f"environment variable {ref.from_env} holds only white space",
                location,
                field_path,
            )
        try:
            value.encode("utf-8")  # undecodable bytes arrive as lone surrogates
        except UnicodeEncodeError:
            _raise(
                f"environment variable {ref.from_env} is not valid UTF-8 text; set it to the "
                "secret as UTF-8",
                location,
                field_path,
            )
        _check_length(value, f"environment variable {ref.from_env}", location, field_path)
        return value
    assert ref.from_file is not None
    path = Path(ref.from_file).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    try:
        real = secret_file(ref, base_dir, root=root)
        text = read_limited(real, MAX_SECRET_BYTES).decode("utf-8")
    except SecretOutside as outside:
        _raise(str(outside), location, field_path)
    except FileRefused as exc:
        _raise(f"secret file {path} {exc.reason}", location, field_path)
    except FileNotFoundError:
        _raise(
            f"secret file {path} not found (from_file: {ref.from_file} is relative to "
            f"{base_dir}); create it or fix the path",
            location,
            field_path,
        )
    except IsADirectoryError:
        _raise(f"secret file {path} is a directory", location, field_path)
    except UnicodeDecodeError:
        _raise(f"secret file {path} is not UTF-8 text", location, field_path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _raise(
                f"secret file {path} is a symbolic link loop; fix the link", location, field_path
            )
        _raise(f"cannot read secret file {path}: {exc.strerror}", location, field_path)
    # a byte-order mark (a Windows editor's) is no character of the secret, nor is the
    # final line break: sent, it would make a token that no longer works
    value = text.removeprefix("\ufeff").rstrip("\r\n")
    if not value:
        _raise(f"secret file {path} is empty", location, field_path)
    if value.isspace():
        _raise(f"secret file {path} holds only white space", location, field_path)
    _check_length(value, f"secret file {path}", location, field_path)
    return value


#: the longest secret the provider takes (characters); a longer one passed plan and made
#: apply fail at its credential after the resources before it were changed
MAX_SECRET_CHARS = 65_536


def _check_length(value: str, what: str, location: SourceLocation | None, field_path: str) -> None:
    if len(value) > MAX_SECRET_CHARS:
        _raise(
            f"{what} holds {len(value):,} characters; the provider takes at most "
            f"{MAX_SECRET_CHARS:,} in a secret",
            location,
            field_path,
        )


class SecretOutside(ValueError):
    """A ``from_file`` path that leads outside the repository (the message says so)."""


def repository_root(start: str | Path) -> Path:
    """Where ``from_file`` paths must stay: the git work tree holding ``start`` (the nearest
    directory with a ``.git`` entry, a worktree's ``.git`` file included), else ``start``
    itself; symlinks resolved."""
    here = Path(start).resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return here


def secret_file(ref: SecretRef, base_dir: str | Path, *, root: Path | None = None) -> Path:
    """The real path (symlinks resolved) of a ``from_file`` secret, checked to be inside
    ``root`` (default: ``repository_root(base_dir)``).

    A manifest is reviewed in a pull request, but the file it names is read on the machine
    that applies it: ``from_file: /etc/passwd`` or ``../../.ssh/id_rsa`` would send a CI
    runner's file to the provider as a credential. So the path, after every symlink, must
    stay in the repository.

    Raises:
        SecretOutside: the path leads outside ``root``.
    """
    assert ref.from_file is not None
    try:
        return confined_path(ref.from_file, base_dir, root=root)
    except OutsideRepository as outside:
        raise SecretOutside(
            f"secret file {ref.from_file} is outside the repository ({outside.root}): "
            "from_file may only name a file inside it, after following symlinks; use "
            "{from_env: VAR} for a secret kept elsewhere"
        ) from None


class OutsideRepository(ValueError):
    """A path that leads outside ``root`` (the repository), after following symlinks."""

    def __init__(self, root: Path) -> None:
        super().__init__(f"outside the repository ({root})")
        self.root = root


def confined_path(path_text: str, base_dir: str | Path, *, root: Path | None = None) -> Path:
    """The real path (symlinks resolved) of ``path_text`` (relative to ``base_dir``),
    checked to be inside ``root`` (default: ``repository_root(base_dir)``). Every file a
    manifest names by ``from_file`` (a secret, a prompt) goes through here.

    Raises:
        OutsideRepository: the path leads outside ``root``.
        OSError: a symbolic link loop (``errno.ELOOP``).
    """
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    root = repository_root(base_dir) if root is None else root
    try:
        real = path.resolve()
    except RuntimeError as loop:  # Python 3.11's Path.resolve on a symlink loop
        raise OSError(errno.ELOOP, "symbolic link loop", str(path)) from loop
    if not real.is_relative_to(root):
        raise OutsideRepository(root)
    return real

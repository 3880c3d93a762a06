"""Load a manifests directory into a ``ManifestSet``, or report every problem at once.

``load_manifests`` reads files (``yamlsource``), validates each document (``Document``),
checks what spans documents (duplicate addresses, references between manifests, unique
environment names) and raises one ``ManifestError`` listing every issue with ``file:line:col``.
Source positions are kept beside the documents in the ``ManifestSet``, never inside a spec.
This module never talks to the provider and never reads secret values.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import ManifestError, ManifestIssue

from .deployment import DeploymentSpec
from .document import KINDS, Document
from .environment import EnvironmentSpec
from .files import MAX_MANIFEST_BYTES, FileRefused, read_limited
from .messages import did_you_mean, explain, format_path
from .secret import SecretRef, iter_secret_refs, resolve_secret
from .vault import CredentialSpec, VaultSpec
from .yamlsource import DataPath, Position, SourceLocation, decode_source, parse_documents

MANIFEST_SUFFIXES = (".yaml", ".yml")
_INTERPOLATION = re.compile(r"(?<!\$)\$\{")
INTERPOLATION_MESSAGE = (
    "${VAR} interpolation is not supported; use {from_env: VAR} for secrets "
    "(write $${ for a literal ${)"
)


@dataclass(frozen=True)
class DocumentSource:
    """Where one document was read from: its file and the position of every node."""

    file: str
    start: Position
    positions: Mapping[DataPath, Position] = field(default_factory=dict)

    def locate(self, path: DataPath, point: str = "key") -> SourceLocation:
        """The position of ``path``, or of its nearest ancestor that exists in the file."""
        for end in range(len(path), 0, -1):
            pos = self.positions.get(path[:end])
            if pos is not None:
                if point == "key" or end < len(path):
                    return SourceLocation(self.file, pos.key_line, pos.key_col)
                return SourceLocation(self.file, pos.line, pos.col)
        return SourceLocation(self.file, self.start.line, self.start.col)


def parse_field_path(text: str) -> DataPath:
    """``tools[0].configs.1.name`` or ``metadata["a.b"]`` -> a data path tuple."""
    path: list[str | int] = []
    for match in re.finditer(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|([^.\[\]]+)', text):
        quoted, index, plain = match.groups()
        if quoted is not None:
            path.append(quoted)
        elif index is not None:
            path.append(int(index))
        elif plain.isdigit():
            path.append(int(plain))
        else:
            path.append(plain)
    return tuple(path)


class ManifestSet:
    """Every manifest document of a run, sorted by address, with where each was written."""

    def __init__(
        self,
        documents: Iterable[Document],
        *,
        base_dir: str | Path = ".",
        sources: Mapping[str, DocumentSource] | None = None,
    ) -> None:
        docs = sorted(documents, key=lambda d: d.address)
        by_address = {d.address: d for d in docs}
        if len(by_address) != len(docs):
            raise ValueError("duplicate addresses in ManifestSet")
        self.documents: tuple[Document, ...] = tuple(docs)
        self.base_dir: Path = Path(base_dir)
        self._by_address = by_address
        self._sources: dict[str, DocumentSource] = dict(sources or {})

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    def __contains__(self, address: object) -> bool:
        return address in self._by_address

    def get(self, address: str) -> Document | None:
        """The document at ``address`` (e.g. ``agent.coder``), or None."""
        return self._by_address.get(address)

    def by_kind(self, kind: str) -> tuple[Document, ...]:
        """Documents of one kind (``Agent`` or ``agent``), sorted by address."""
        return tuple(d for d in self.documents if d.kind.lower() == kind.lower())

    def credentials(self) -> tuple[tuple[str, Document, CredentialSpec], ...]:
        """``(address, vault document, credential)`` for every credential of every vault."""
        return tuple(
            (address, doc, cred)
            for doc in self.by_kind("Vault")
            for address, cred in doc.credentials()
        )

    def location(self, address: str, field_path: str = "") -> SourceLocation:
        """Where ``address`` (optionally one field of its spec) is written.

        Args:
            address: a document address, or a credential address ``vault.V.credential.C``.
            field_path: a path inside the spec (or the credential), e.g. ``model``,
                ``tools[0].name``, ``auth.token``; a leading ``spec.`` is accepted. The
                nearest existing ancestor is returned when the field itself is not written.

        Raises:
            KeyError: no document has this address.
        """
        doc_address, _, credential = address.partition(".credential.")
        doc = self._by_address.get(doc_address)
        if doc is None:
            raise KeyError(address)
        source = self._sources.get(doc_address)
        if source is None:
            return SourceLocation("<memory>", 0, 0)
        base: DataPath = ("spec",)
        if credential:
            names = (
                [c.name for c in doc.spec.credentials] if isinstance(doc.spec, VaultSpec) else []
            )
            if credential not in names:
                raise KeyError(address)
            base = ("spec", "credentials", names.index(credential))
        elif not field_path:
            return source.locate(())
        path = parse_field_path(field_path)
        if path[:1] == ("spec",) and not credential:
            path = path[1:]
        return source.locate(base + path)

    def secret_refs(self, address: str) -> dict[str, SecretRef]:
        """``{field path: ref}`` of every secret of a credential or document address."""
        doc_address, _, credential = address.partition(".credential.")
        doc = self._by_address.get(doc_address)
        if doc is None:
            raise KeyError(address)
        if credential:
            spec = dict(doc.credentials()).get(address)
            if spec is None:
                raise KeyError(address)
            return dict(iter_secret_refs(spec))
        return dict(iter_secret_refs(doc.spec))

    def resolve_secret(self, address: str, field_path: str) -> str:
        """Read one secret's value; errors point at where the reference is written.

        Raises:
            KeyError: no such address or secret field.
            ManifestError: the variable or file is missing or empty.
        """
        ref = self.secret_refs(address)[field_path]
        return resolve_secret(
            ref,
            self.base_dir,
            location=self.location(address, field_path),
            field_path=field_path,
        )


# --------------------------------------------------------------------------- loading


@dataclass
class _Loaded:
    document: Document
    source: DocumentSource


def _display(path: Path) -> str:
    """A path relative to the current directory when it is below it, else as given."""
    candidates = [Path(os.path.abspath(path))]
    try:
        candidates.append(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: shown as given, reported when read
        pass
    for candidate in candidates:
        try:
            return candidate.relative_to(Path.cwd()).as_posix()
        except ValueError:
            continue
    return str(path)


def _manifest_files(root: Path) -> list[Path]:
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(MANIFEST_SUFFIXES):
                full = Path(dirpath) / name
                found.append((full.relative_to(root).as_posix(), full))
    return [path for _, path in sorted(found)]


def _unescape(value: Any, path: DataPath, hits: list[DataPath]) -> Any:
    """Reject ``${`` in strings (recording where) and turn the ``$${`` escape into ``${``."""
    if isinstance(value, str):
        if _INTERPOLATION.search(value):
            hits.append(path)
        return value.replace("$${", "${")
    if isinstance(value, dict):
        return {k: _unescape(v, path + (k,), hits) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape(v, path + (i,), hits) for i, v in enumerate(value)]
    return value


def _issue(loc: SourceLocation, message: str, path: DataPath = ()) -> ManifestIssue:
    return ManifestIssue(loc.file, loc.line, loc.col, message, format_path(path))


def _load_file(file: Path, shown: str) -> tuple[list[_Loaded], list[ManifestIssue]]:
    try:
        raw = read_limited(file, MAX_MANIFEST_BYTES)
    except FileRefused as exc:
        return [], [ManifestIssue(shown, 1, 1, f"this file {exc.reason}; remove or replace it")]
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            message = "a symbolic link loop; fix or remove the link"
        else:
            message = f"cannot read this file: {exc.strerror}"
        return [], [ManifestIssue(shown, 1, 1, message)]
    text, problem = decode_source(raw)
    if text is None:
        assert problem is not None
        return [], [ManifestIssue(shown, problem.line, problem.col, problem.message)]
    parsed, yaml_issues = parse_documents(text)
    issues = [ManifestIssue(shown, i.line, i.col, i.message) for i in yaml_issues]
    loaded: list[_Loaded] = []
    for doc in parsed:
        source = DocumentSource(shown, doc.start, doc.positions)
        issues += [
            ManifestIssue(shown, i.line, i.col, i.message, format_path(i.path)) for i in doc.issues
        ]
        if not isinstance(doc.data, dict):
            issues.append(
                _issue(
                    source.locate(()),
                    f"a manifest document must be a mapping with kind, name and spec; "
                    f"got a {'list' if isinstance(doc.data, list) else 'scalar value'}",
                )
            )
            continue
        data = dict(doc.data)
        if "spec" in data:
            hits: list[DataPath] = []
            data["spec"] = _unescape(data["spec"], ("spec",), hits)
            issues += [_issue(source.locate(p, "value"), INTERPOLATION_MESSAGE, p) for p in hits]
        try:
            document = Document.model_validate(data)
        except ValidationError as exc:
            # a value YAML already refused (e.g. an unsupported tag) needs no second error
            refused = [i.path for i in doc.issues if i.path]
            issues += [
                issue
                for path, issue in _validation_issues(exc, data, source)
                if not any(path[: len(r)] == r for r in refused)
            ]
            continue
        loaded.append(_Loaded(document, source))
    return loaded, issues


def _validation_issues(
    exc: ValidationError, data: dict[str, Any], source: DocumentSource
) -> list[tuple[DataPath, ManifestIssue]]:
    issues: list[tuple[DataPath, ManifestIssue]] = []
    for error in exc.errors():
        if error["type"] == "spec_without_kind":
            continue  # the kind error says it all
        explained = explain(error, data, Document)
        message = explained.message
        if explained.shown_path == ("kind",) and error["type"] == "missing":
            message += ": add kind: Agent, Environment, Vault or Deployment"
        location = source.locate(explained.path, explained.point)
        issues.append((explained.path, _issue(location, message, explained.shown_path)))
    return issues


def _check_set(loaded: list[_Loaded]) -> tuple[dict[str, _Loaded], list[ManifestIssue]]:
    """Checks across documents: duplicate addresses, references, unique environment names."""
    issues: list[ManifestIssue] = []
    first: dict[str, _Loaded] = {}
    for item in loaded:
        address = item.document.address
        if address in first:
            earlier = first[address].source.locate(("name",))
            issues.append(
                _issue(
                    item.source.locate(("name",)),
                    f"duplicate address {address}: also defined at {earlier}; rename one of them",
                    ("name",),
                )
            )
        else:
            first[address] = item
    names = {
        kind: sorted(i.document.name for i in first.values() if i.document.kind == kind)
        for kind in KINDS
    }
    env_names: dict[str, _Loaded] = {}
    for item in first.values():
        doc = item.document
        if isinstance(doc.spec, EnvironmentSpec):
            other = env_names.setdefault(doc.remote_name, item)
            if other is not item:
                where: DataPath = ("spec", "name") if doc.spec.name else ("name",)
                issues.append(
                    _issue(
                        item.source.locate(where),
                        f"environment name '{doc.remote_name}' is also used by "
                        f"{other.document.address} ({other.source.locate(('name',))}); the provider "
                        "requires unique environment names",
                        where,
                    )
                )
        if isinstance(doc.spec, DeploymentSpec):
            for kind, name, spec_path in doc.spec.references():
                if name in names[kind]:
                    continue
                message = f"unknown {kind.lower()} '{name}': no {kind} manifest has this name"
                close = did_you_mean(name, names[kind])
                if close:
                    message += f"; did you mean '{close}'?"
                elif names[kind]:
                    message += f" (declared: {', '.join(names[kind])})"
                else:
                    message += f"; add a {kind} manifest named {name}"
                path = ("spec",) + spec_path
                if path not in item.source.positions and path[:-1] in item.source.positions:
                    path = path[:-1]  # `agent: coder` rather than `agent: {ref: coder}`
                issues.append(_issue(item.source.locate(path, "value"), message, path))
    return first, issues


def load_manifests(path: str | Path) -> ManifestSet:
    """Load every manifest under a directory (recursively) or in one file.

    Files ending ``.yaml``/``.yml`` are read in sorted order (hidden files and directories
    are skipped; other files, like secret files, are ignored); each may hold many documents.

    Args:
        path: the manifests directory, or a single manifest file.

    Returns:
        The documents, sorted by address, with their source locations.

    Raises:
        ManifestError: listing every problem of every file, sorted by file and line.
    """
    root = Path(path)
    shown_root = _display(root)
    if not root.exists() and root.is_symlink():
        raise ManifestError(
            ManifestIssue(
                shown_root,
                1,
                1,
                "a symbolic link that leads nowhere (a loop, or its target is missing); "
                "fix the link or pass the manifests directory with --manifests/-f",
            )
        )
    if not root.exists():
        raise ManifestError(
            ManifestIssue(
                shown_root,
                1,
                1,
                "no such file or directory; pass the manifests directory with --manifests/-f",
            )
        )
    files = _manifest_files(root) if root.is_dir() else [root]
    loaded: list[_Loaded] = []
    issues: list[ManifestIssue] = []
    for file in files:
        shown = _display(file)
        try:
            file_loaded, file_issues = _load_file(file, shown)
        except Exception as exc:  # noqa: BLE001 - a bug must not hide other files' issues
            file_loaded, file_issues = (
                [],
                [
                    ManifestIssue(
                        shown,
                        1,
                        1,
                        f"internal error while reading this file ({type(exc).__name__}); "
                        "please report this bug",
                    )
                ],
            )
        loaded += file_loaded
        issues += file_issues
    unique, set_issues = _check_set(loaded)
    issues += set_issues
    if issues:
        unique_issues = set(issues)
        raise ManifestError(
            sorted(unique_issues, key=lambda i: (i.file, i.line, i.col, i.path, i.message))
        )
    return ManifestSet(
        (item.document for item in unique.values()),
        base_dir=root if root.is_dir() else root.parent,
        sources={address: item.source for address, item in unique.items()},
    )

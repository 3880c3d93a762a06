"""``ManifestSet``: the documents of one run, sorted by address, with where each is written
(``DocumentSource``), their secrets and the files read. Built by ``loader.load_manifests``.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ManifestIssue

from .document import Document
from .files import MAX_SECRET_BYTES, too_large
from .policy import PolicySource
from .secret import (
    SecretOutside,
    SecretRef,
    iter_secret_refs,
    repository_root,
    resolve_secret,
    secret_file,
)
from .skilldir import SkillSource
from .vault import CredentialSpec, VaultSpec
from .yamlsource import DataPath, Position, SourceLocation


def secret_file_problem(
    from_file: str, base_dir: Path, root: Path, *, must_exist: bool = True
) -> str | None:
    """Why the ``from_file`` secret ``from_file`` cannot be read (outside the repository,
    or with ``must_exist`` missing, not a file or too large), or None. No secret is read."""
    try:
        real = secret_file(SecretRef(from_file=from_file), base_dir, root=root)
        if not must_exist:
            return None
        exists, is_file = real.exists(), real.is_file()
        size = real.stat().st_size if is_file else 0
    except SecretOutside as outside:
        return str(outside)
    except OSError as exc:  # a symlink loop, a name too long: as plan says them
        if not must_exist:
            return None
        if exc.errno == errno.ELOOP:
            return f"secret file {from_file} is a symbolic link loop; fix the link"
        return f"cannot read secret file {from_file}: {exc.strerror}"
    if not is_file:
        what = "is not a file" if exists else "does not exist"
        return (
            f"secret file {from_file} {what} (from_file is relative to "
            f"{display_path(base_dir)}); create it or fix the path"
        )
    if size > MAX_SECRET_BYTES:
        return f"secret file {from_file} {too_large(size, MAX_SECRET_BYTES).reason}"
    return None


def display_path(path: Path) -> str:
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
        files: Iterable[str] = (),
        ignored: Iterable[str] = (),
        policies: Iterable[PolicySource] = (),
        skills: Mapping[str, SkillSource] | None = None,
    ) -> None:
        docs = sorted(documents, key=lambda d: d.address)
        by_address = {d.address: d for d in docs}
        if len(by_address) != len(docs):
            raise ValueError("duplicate addresses in ManifestSet")
        self.documents: tuple[Document, ...] = tuple(docs)
        self.base_dir: Path = Path(base_dir)
        self._by_address = by_address
        self._sources: dict[str, DocumentSource] = dict(sources or {})
        #: every manifest file read (as shown in messages), sorted, also those with no document
        self.files: tuple[str, ...] = tuple(files)
        #: YAML files under the directory that ``.reconcilerignore`` left out
        self.ignored: tuple[str, ...] = tuple(ignored)
        #: where ``from_file`` secrets must stay (``secret.repository_root``)
        self.secret_root: Path = repository_root(self.base_dir)
        #: the ``kind: Policy`` documents (never remote resources), sorted by name
        self.policies: tuple[PolicySource, ...] = tuple(
            sorted(policies, key=lambda p: p.document.name)
        )
        #: skill address -> its source directory as read at load (files, slug, digest)
        self.skills: dict[str, SkillSource] = dict(skills or {})

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

    def secret_file_issues(self, *, must_exist: bool = True) -> list[ManifestIssue]:
        """Every ``from_file`` secret that leads outside the repository or (``must_exist``)
        names no file or one larger than a secret may be, each at the place it is written.
        No secret is read."""
        issues: list[ManifestIssue] = []
        for doc in self.documents:
            for path, ref in iter_secret_refs(doc.spec):
                if ref.from_file is None:
                    continue
                loc = self.location(doc.address, path)
                problem = secret_file_problem(
                    ref.from_file, self.base_dir, self.secret_root, must_exist=must_exist
                )
                if problem is not None:
                    issues.append(
                        ManifestIssue(loc.file, loc.line, loc.col, problem, f"spec.{path}")
                    )
        return issues

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
            field_path=self._shown_path(address, field_path),
            root=self.secret_root,
        )

    def _shown_path(self, address: str, field_path: str) -> str:
        """``field_path`` of ``address`` as validate names it: from the document's top,
        ``spec.credentials[0].auth.token`` for a credential's ``auth.token``."""
        doc_address, _, credential = address.partition(".credential.")
        spec = self._by_address[doc_address].spec
        if credential and isinstance(spec, VaultSpec):
            names = [c.name for c in spec.credentials]
            return f"spec.credentials[{names.index(credential)}].{field_path}"
        return field_path if field_path.startswith("spec.") else f"spec.{field_path}"


__all__ = ["DocumentSource", "ManifestSet", "display_path", "parse_field_path"]

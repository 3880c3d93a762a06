"""Load a manifests directory into a ``ManifestSet``, or report every problem at once.

``load_manifests`` reads files (``yamlsource``), validates each document (``Document``),
checks what spans documents (duplicate addresses, references between manifests, unique
environment names) and raises one ``ManifestError`` listing every issue with ``file:line:col``.
Source positions are kept beside the documents in the ``ManifestSet``, never inside a spec.
This module never talks to the provider and never reads secret values.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import ManifestError, ManifestIssue, a_or_an
from reconciler.kinds import ID_PREFIXES, MANIFEST_KINDS, NAME_PATTERN, noun

from .agent import AgentSpec
from .deployment import DeploymentSpec
from .document import Document, ignore_changes_problems
from .environment import EnvironmentSpec
from .files import (
    IGNORE_FILE,
    MAX_MANIFEST_BYTES,
    FileRefused,
    manifest_files,
    read_limited,
)
from .manifestset import DocumentSource, ManifestSet, display_path, secret_file_problem
from .messages import did_you_mean, explain, format_path, spread, yaml_type
from .policy import (
    PolicyDocument,
    PolicySource,
    check_expressions,
)
from .rawchecks import (
    Reference,
    issue_at,
    raw_cross_field_issues,
    raw_expression_issues,
    raw_references,
    raw_secret_files,
    raw_skill_source_issues,
)
from .secret import (
    repository_root,
)
from .skill import ANTHROPIC_SKILLS, SkillSpec, skill_source
from .skilldir import SkillSource, SkillSourceError
from .textfile import read_text_files, stand_in_unread
from .yamlsource import DataPath, SourceLocation, decode_source, parse_documents

POLICY_KIND = "Policy"
NOT_A_MANIFEST_HINT = f" (if this file is not a manifest, list it in {IGNORE_FILE})"
_INTERPOLATION = re.compile(r"(?<!\$)\$\{")
INTERPOLATION_MESSAGE = (
    "${VAR} interpolation is not supported; use {from_env: VAR} for secrets "
    "(write $${ for a literal ${)"
)


# --------------------------------------------------------------------------- loading


@dataclass
class _Loaded:
    document: Document
    source: DocumentSource
    #: a Skill's directory, read and checked as the provider will judge its upload
    skill: SkillSource | None = None


#: the name recorded in ``failed`` for a document whose own name is missing or invalid: any
#: reference to its kind may be to it (no valid name is empty)
ANY_NAME = ""


@dataclass
class _FileResult:
    loaded: list[_Loaded] = field(default_factory=list)
    policies: list[PolicySource] = field(default_factory=list)
    issues: list[ManifestIssue] = field(default_factory=list)
    #: (kind, name) of documents that failed validation: they exist, only wrongly written,
    #: so a reference to one is no error of its own (the document's error says it all)
    failed: set[tuple[str, str]] = field(default_factory=set)
    #: the file could not be read or parsed whole: documents in it may be missing
    broken: bool = False
    #: ``from_file`` secrets of vaults that failed validation: (where, field path, file),
    #: checked as those of valid documents are, so every error is reported at once
    secret_files: list[tuple[SourceLocation, str, str]] = field(default_factory=list)
    #: references of documents that were not loaded (they failed validation), as written:
    #: checked as those of loaded documents are, so every error is reported at once
    references: list[Reference] = field(default_factory=list)


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


def escape_interpolation(value: Any) -> Any:
    """``value`` (a spec) with every ``${`` in its strings written ``$${``: the loader reads
    it back as exactly ``value``, where ``${`` would be refused and ``$${`` read as ``${``.
    For manifests written from live objects (``import --all-unmanaged``).

    >>> escape_interpolation({"system": "Use ${REPO}", "tags": ["$${x}"]})
    {'system': 'Use $${REPO}', 'tags': ['$$${x}']}
    """
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_interpolation(v) for v in value]
    return value


def _load_file(file: Path, shown: str, root: Path | None = None) -> _FileResult:
    try:
        raw = read_limited(file, MAX_MANIFEST_BYTES)
    except FileRefused as exc:
        message = f"this file {exc.reason}; remove or replace it"
        return _FileResult(issues=[ManifestIssue(shown, 1, 1, message)], broken=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            message = "a symbolic link loop; fix or remove the link"
        else:
            message = f"cannot read this file: {exc.strerror}"
        return _FileResult(issues=[ManifestIssue(shown, 1, 1, message)], broken=True)
    text, problem = decode_source(raw)
    if text is None:
        assert problem is not None
        return _FileResult(
            issues=[ManifestIssue(shown, problem.line, problem.col, problem.message)],
            broken=True,
        )
    parsed, yaml_issues = parse_documents(text)
    issues = [ManifestIssue(shown, i.line, i.col, i.message) for i in yaml_issues]
    loaded: list[_Loaded] = []
    policies: list[PolicySource] = []
    failed: set[tuple[str, str]] = set()
    secret_files: list[tuple[SourceLocation, str, str]] = []
    references: list[Reference] = []
    for doc in parsed:
        source = DocumentSource(shown, doc.start, doc.positions)
        issues += [
            ManifestIssue(shown, i.line, i.col, i.message, format_path(i.path)) for i in doc.issues
        ]
        if not isinstance(doc.data, dict):
            issues.append(
                issue_at(
                    source.locate(()),
                    f"a manifest document must be a mapping with kind, name and spec; "
                    f"got a {'list' if isinstance(doc.data, list) else 'scalar value'}"
                    f"{NOT_A_MANIFEST_HINT}",
                )
            )
            continue
        data = dict(doc.data)
        if "spec" in data:
            hits: list[DataPath] = []
            data["spec"] = _unescape(data["spec"], ("spec",), hits)
            issues += [issue_at(source.locate(p, "value"), INTERPOLATION_MESSAGE, p) for p in hits]
        text_issues = read_text_files(
            data, file.parent, root or repository_root(file.parent), source.locate
        )
        unread: list[DataPath] = []
        if text_issues:
            issues += text_issues
            unread = stand_in_unread(data)  # the rest of the document is still checked
            kind, name = data.get("kind"), data.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                failed.add((kind, name))  # it exists: a reference to it is no error of its own
        if data.get("kind") == POLICY_KIND:
            policy, policy_issues = _load_policy(data, source)
            issues += policy_issues
            if policy is not None:
                policies.append(policy)
            continue
        try:
            document = Document.model_validate(data)
        except ValidationError as exc:
            kind, name = data.get("kind"), data.get("name")
            if not isinstance(name, str) or any(e["loc"][:1] == ("name",) for e in exc.errors()):
                # a missing or wrong name could be any name (a typo of the one referred to)
                name = ANY_NAME
            # a misspelt or missing kind could be any kind: its name is no unknown reference
            # (a kind that is not a string, e.g. `kind: [Agent]`, is misspelt too)
            kinds = (
                [kind] if isinstance(kind, str) and kind in MANIFEST_KINDS else list(MANIFEST_KINDS)
            )
            failed.update((k, name) for k in kinds)
            # a value YAML already refused (e.g. an unsupported tag) needs no second error,
            # nor does a file that could not be read
            refused = [i.path for i in doc.issues if i.path] + unread
            every_ignore = _ignore_changes_issues(data, source)
            if every_ignore is not None:
                refused.append(("ignore_changes",))
                issues += every_ignore
            found = _validation_issues(exc, data, source)
            issues += [
                issue for path, issue in found if not any(path[: len(r)] == r for r in refused)
            ]
            secret_files += raw_secret_files(data, source)
            wrong = [*refused, *(p for p, _ in found)]
            references += raw_references(data, source, wrong)
            issues += raw_skill_source_issues(data, source, file, wrong)
            issues += raw_cross_field_issues(data, source, wrong)
            continue
        if text_issues:
            references += raw_references(data, source, unread)
            continue
        skill: SkillSource | None = None
        if isinstance(document.spec, SkillSpec):
            try:
                skill = skill_source(document.spec, file)
            except SkillSourceError as error:
                path: DataPath = ("spec", "source")
                issues.append(issue_at(source.locate(path, "value"), str(error), path))
                failed.add((document.kind, document.name))  # it exists: referring to it is fine
                continue
        loaded.append(_Loaded(document, source, skill))
    return _FileResult(
        loaded,
        policies,
        issues,
        failed,
        broken=bool(yaml_issues),
        secret_files=secret_files,
        references=references,
    )


def _load_policy(
    data: dict[str, Any], source: DocumentSource
) -> tuple[PolicySource | None, list[ManifestIssue]]:
    """A ``kind: Policy`` document, validated; its expressions are checked with the set."""
    try:
        policy = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        issues = [issue for _, issue in _validation_issues(exc, data, source, PolicyDocument)]
        return None, issues + raw_expression_issues(data, source)
    expressions = tuple(
        source.locate(("spec", "rules", index, "expression"), "value")
        for index in range(len(policy.spec.rules))
    )
    return PolicySource(policy, source.locate(()), expressions), []


def _ignore_changes_issues(
    data: dict[str, Any], source: DocumentSource
) -> list[ManifestIssue] | None:
    """Every bad ``ignore_changes`` entry, each at its place; None when the list itself (or
    the kind) is wrong, so pydantic's own error stands."""
    kind, paths = data.get("kind"), data.get("ignore_changes", [])
    if not isinstance(kind, str) or kind not in MANIFEST_KINDS or not isinstance(paths, list):
        return None
    if not all(isinstance(p, str) for p in paths):
        return None
    return [
        issue_at(
            source.locate(("ignore_changes", index), "value"), message, ("ignore_changes", index)
        )
        for index, message in ignore_changes_problems(kind, paths)
    ]


def _validation_issues(
    exc: ValidationError,
    data: dict[str, Any],
    source: DocumentSource,
    model: type[Document | PolicyDocument] = Document,
) -> list[tuple[DataPath, ManifestIssue]]:
    issues: list[tuple[DataPath, ManifestIssue]] = []
    for error in spread(exc.errors()):
        if error["type"] == "spec_without_kind":
            continue  # the kind error says it all
        explained = explain(error, data, model)
        message = explained.message
        if explained.shown_path == ("kind",) and error["type"] == "missing":
            message += f": add kind: {', '.join(MANIFEST_KINDS)} or {POLICY_KIND}"
            if "spec" not in data:
                message += NOT_A_MANIFEST_HINT
        elif explained.shown_path == ("kind",) and error["type"] == "literal_error":
            message = _unknown_kind(data.get("kind"))
        elif error["type"] == "extra_forbidden" and explained.shown_path in _KUBERNETES_KEYS:
            message = _kubernetes_hint(str(explained.shown_path[0]), data)
        path, point, shown = explained.path, explained.point, explained.shown_path
        from_file = path[:-1] + ("from_file",)
        if path[-1:] == ("content",) and from_file in source.positions:
            # a seed's content was read from its file: the error is the file's
            path, point, shown = from_file, "value", from_file
        location = source.locate(path, point)
        issues.append((explained.path, issue_at(location, message, shown)))
    return issues


#: top-level keys of a Kubernetes object, written by habit (kubectl users are many)
_KUBERNETES_KEYS: frozenset[DataPath] = frozenset({("apiVersion",), ("metadata",)})


def _kubernetes_hint(key: str, data: Mapping[str, Any]) -> str:
    """The error of a top-level ``apiVersion`` or ``metadata``, saying where things go."""
    if key == "apiVersion":
        return (
            "unknown field 'apiVersion': manifests have no apiVersion (kind says what a "
            "document is); remove it"
        )
    name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) else None
    shown = f" (name: {name})" if isinstance(name, str) and re.fullmatch(NAME_PATTERN, name) else ""
    return (
        f"unknown field 'metadata': a document's name is the top-level name:{shown}, and its "
        "metadata goes in spec.metadata"
    )


def _unknown_kind(kind: object) -> str:
    """The error of a ``kind`` that is none of the manifest kinds, ``Policy`` included (the
    document models know only the resource kinds)."""
    kinds = [*MANIFEST_KINDS, POLICY_KIND]
    expected = ", ".join(f"'{k}'" for k in kinds[:-1]) + f" or '{kinds[-1]}'"
    if not isinstance(kind, str):
        return f"must be one of {expected}; got {yaml_type(kind)}"
    close = did_you_mean(kind, kinds)
    return f"must be one of {expected}, not '{kind[:64]}'" + (
        f" (did you mean '{close}'?)" if close else ""
    )


def _check_set(
    loaded: list[_Loaded],
    failed: set[tuple[str, str]],
    *,
    broken: bool = False,
    unloaded: Sequence[Reference] = (),
) -> tuple[dict[str, _Loaded], list[ManifestIssue]]:
    """Checks across documents: duplicate addresses, references, unique environment names.

    A reference to a document in ``failed`` (one that exists but did not validate) is not
    reported again: fixing that document fixes the reference. When a file is ``broken``
    (unreadable or invalid YAML) the documents it holds are unknown, so no reference is
    reported as unknown until it is fixed. ``unloaded`` are the references of documents
    that failed, as written: each is checked as those of the loaded documents.
    """
    issues: list[ManifestIssue] = []
    first: dict[str, _Loaded] = {}
    for item in loaded:
        address = item.document.address
        if address in first:
            earlier = first[address].source.locate(("name",))
            issues.append(
                issue_at(
                    item.source.locate(("name",)),
                    f"duplicate address {address}: also defined at {earlier}; rename one of them",
                    ("name",),
                )
            )
        else:
            first[address] = item
    issues += _move_issues(first) + _twin_skills(first)
    names: dict[str, list[str]] = {
        kind: sorted(i.document.name for i in first.values() if i.document.kind == kind)
        for kind in MANIFEST_KINDS
    }
    env_names: dict[str, _Loaded] = {}
    references: list[Reference] = list(unloaded)
    for item in first.values():
        doc = item.document
        if isinstance(doc.spec, EnvironmentSpec):
            other = env_names.setdefault(doc.remote_name, item)
            if other is not item:
                where: DataPath = ("spec", "name") if doc.spec.name else ("name",)
                issues.append(
                    issue_at(
                        item.source.locate(where),
                        f"environment name '{doc.remote_name}' is also used by "
                        f"{other.document.address} ({other.source.locate(('name',))}); the provider "
                        "requires unique environment names",
                        where,
                    )
                )
        if isinstance(doc.spec, AgentSpec):
            issues += _roster_names(item, doc.spec, names["Agent"])
        if isinstance(doc.spec, DeploymentSpec | AgentSpec):
            references += [(k, n, p, item.source) for k, n, p in doc.spec.references()]
    for kind, name, spec_path, source in references:
        if name in names[kind] or failed & {(kind, name), (kind, ANY_NAME)} or broken:
            continue
        label = noun(kind)
        message = f"unknown {label} '{name}': no {kind} manifest has this name"
        close = did_you_mean(name, names[kind])
        if kind == "Skill" and name in ANTHROPIC_SKILLS:
            wire = f"{{type: anthropic, skill_id: {name}}}"
            message += f"; {name} is one of Anthropic's skills: write {wire}"
        elif close:
            message += f"; did you mean '{close}'?"
        elif names[kind]:
            message += f" (declared: {', '.join(names[kind])})"
        else:
            message += f"; add {a_or_an(kind)} manifest named {name}"
        path = ("spec",) + spec_path
        if path not in source.positions and path[:-1] in source.positions:
            path = path[:-1]  # `agent: coder` rather than `agent: {ref: coder}`
        issues.append(issue_at(source.locate(path, "value"), message, path))
    return first, issues


def _twin_skills(first: dict[str, _Loaded]) -> list[ManifestIssue]:
    """Two Skill documents uploading the very same files (SKILL.md, so the slug, included)
    under one display name are two live skills nothing tells apart: a lost state finds
    skills by slug and files (two with other display names, as import writes two hand-made
    copies, are told apart by them)."""
    issues: list[ManifestIssue] = []
    seen: dict[tuple[str, str], _Loaded] = {}
    for item in first.values():
        spec, skill = item.document.spec, item.skill
        if skill is None or not isinstance(spec, SkillSpec):
            continue
        other = seen.setdefault((skill.digest, spec.display_name or skill.slug), item)
        if other is not item:
            path: DataPath = ("spec", "source")
            issues.append(
                issue_at(
                    item.source.locate(path, "value"),
                    f"{item.document.address} holds exactly the files of "
                    f"{other.document.address} ({other.source.locate(path, 'value')}) under "
                    "the same display name: two skills nothing tells apart (a lost lockfile "
                    "finds skills by their slug and files). Let the agents share one, or give "
                    "one another display_name",
                    path,
                )
            )
    return issues


def _roster_names(item: _Loaded, spec: AgentSpec, agents: list[str]) -> list[ManifestIssue]:
    """A multiagent roster names agents by provider id; an Agent manifest's name there (or
    any other word) was accepted and sent as an id, and apply failed with the provider's 404
    after the actions before it."""
    issues: list[ManifestIssue] = []
    prefix = ID_PREFIXES["agent"]
    for value, spec_path in spec.roster_ids():
        if value.startswith(prefix):
            continue
        if value in agents:
            message = (
                f"'{value}' names an Agent manifest, but multiagent entries are provider agent "
                f"ids ({prefix}...), not manifest names: apply agent.{value} first and write its "
                f"id (`reconciler state show agent.{value}`)"
            )
        else:
            message = (
                f"'{value[:80]}' is not a provider agent id: multiagent entries name agents by "
                f"id ({prefix}...; `reconciler state show agent.NAME` shows one), or this agent "
                "as {type: self}"
            )
        path = ("spec", *spec_path)
        issues.append(issue_at(item.source.locate(path, "value"), message, path))
    return issues


def _policy_issues(policies: list[PolicySource]) -> list[ManifestIssue]:
    """Duplicate policy names, and expressions that do not compile or read no field."""
    first: dict[str, PolicySource] = {}
    for policy in policies:
        first.setdefault(policy.document.name, policy)
    unique = list(first.values())
    return duplicate_policies(policies) + (check_expressions(unique) if unique else [])


def duplicate_policies(policies: Sequence[PolicySource]) -> list[ManifestIssue]:
    """An issue at each policy named as one before it (in ``policies``' order): its
    findings would be told apart from the other's by nothing."""
    issues: list[ManifestIssue] = []
    first: dict[str, PolicySource] = {}
    for policy in policies:
        earlier = first.setdefault(policy.document.name, policy)
        if earlier is not policy:
            loc = policy.location
            issues.append(
                ManifestIssue(
                    loc.file,
                    loc.line,
                    loc.col,
                    f"duplicate policy {policy.document.name}: also defined at "
                    f"{earlier.location}; rename one of them",
                    "name",
                )
            )
    return issues


def _move_issues(declared: Mapping[str, _Loaded]) -> list[ManifestIssue]:
    """``moved_from`` across documents: the old address must not be declared any more (one
    object cannot live at both), and two documents cannot both take it over."""
    issues: list[ManifestIssue] = []
    movers: dict[str, _Loaded] = {}
    for address, item in sorted(declared.items()):
        old = item.document.moved_from_address
        if old is None:
            continue
        where = item.source.locate(("moved_from",), "value")
        other = declared.get(old)
        if other is not None:
            issues.append(
                issue_at(
                    where,
                    f"{address} says moved_from: {item.document.moved_from}, but {old} is still "
                    f"declared at {other.source.locate(('name',))}; a move keeps one object "
                    "under the new name: remove that document, or this moved_from",
                    ("moved_from",),
                )
            )
        earlier = movers.setdefault(old, item)
        if earlier is not item:
            issues.append(
                issue_at(
                    where,
                    f"{earlier.document.address} ({earlier.source.locate(('moved_from',))}) "
                    f"already moves from {old}; only one document can take it over",
                    ("moved_from",),
                )
            )
    return issues


def load_manifests(path: str | Path, *, check_secret_files: bool = False) -> ManifestSet:
    """Load every manifest under a directory (recursively) or in one file.

    Files ending ``.yaml``/``.yml`` are read in sorted order (hidden files and directories
    are skipped; other files, like secret files, are ignored); each may hold many documents.
    YAML files that are not manifests (a CI workflow, a template) are left out by listing
    them in ``.reconcilerignore`` at the top of the directory, in gitignore syntax.

    Args:
        path: the manifests directory, or a single manifest file.
        check_secret_files: also report each ``from_file`` secret that does not exist (no
            secret is read). A path that leads out of the repository is always an error.

    Returns:
        The documents, sorted by address, with their source locations.

    Raises:
        ManifestError: listing every problem of every file, sorted by file and line.
    """
    root = Path(path)
    shown_root = display_path(root)
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
    files, skipped = manifest_files(root) if root.is_dir() else ([root], [])
    loaded: list[_Loaded] = []
    policies: list[PolicySource] = []
    issues: list[ManifestIssue] = []
    failed: set[tuple[str, str]] = set()
    broken = False
    unvalidated_secrets: list[tuple[SourceLocation, str, str]] = []
    unloaded_references: list[Reference] = []
    text_root = repository_root(root if root.is_dir() else root.parent)
    for file in files:
        shown = display_path(file)
        try:
            result = _load_file(file, shown, text_root)
        except Exception as exc:  # noqa: BLE001 - a bug must not hide other files' issues
            message = (
                f"internal error while reading this file ({type(exc).__name__}); "
                "please report this bug"
            )
            result = _FileResult(issues=[ManifestIssue(shown, 1, 1, message)], broken=True)
        loaded += result.loaded
        policies += result.policies
        issues += result.issues
        failed |= result.failed
        broken = broken or result.broken
        unvalidated_secrets += result.secret_files
        unloaded_references += result.references
    unique, set_issues = _check_set(loaded, failed, broken=broken, unloaded=unloaded_references)
    issues += set_issues + _policy_issues(policies)
    manifests = ManifestSet(
        (item.document for item in unique.values()),
        base_dir=root if root.is_dir() else root.parent,
        sources={address: item.source for address, item in unique.items()},
        files=[display_path(f) for f in files],
        ignored=[display_path(f) for f in skipped],
        policies=policies,
        skills={a: item.skill for a, item in unique.items() if item.skill is not None},
    )
    # a path out of the repository is refused whatever is planned; whether each file
    # exists is asked by `validate` (a plan reads the secrets it needs, and only those)
    issues += manifests.secret_file_issues(must_exist=check_secret_files)
    for where, shown_path, from_file in unvalidated_secrets:  # of vaults that did not validate
        problem = secret_file_problem(
            from_file, manifests.base_dir, manifests.secret_root, must_exist=check_secret_files
        )
        if problem is not None:
            issues.append(ManifestIssue(where.file, where.line, where.col, problem, shown_path))
    if issues:
        unique_issues = set(issues)
        raise ManifestError(
            sorted(unique_issues, key=lambda i: (i.file, i.line, i.col, i.path, i.message))
        )
    return manifests

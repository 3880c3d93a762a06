"""Policies: check the manifests against their ``kind: Policy`` rules (and central ones).

``validate``, ``plan`` and ``apply`` call ``check_policies`` once the manifests are loaded:
a mandatory rule that fails raises ``PolicyError`` before anything is refreshed or changed;
advisory ones come back as ``PolicyWarning`` values the plan carries. ``load_policies``
reads a directory of policies kept outside the manifests (``validate --policies DIR``).
Nothing here prints or talks to the provider.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from reconciler.engine.model import PolicyWarning
from reconciler.errors import ManifestError, ManifestIssue, PolicyError
from reconciler.kinds import MANIFEST_KINDS, address_of
from reconciler.manifest import ManifestSet, load_manifests
from reconciler.manifest.loader import duplicate_policies
from reconciler.manifest.files import MAX_MANIFEST_BYTES, FileRefused, manifest_files, read_limited
from reconciler.manifest.manifestset import display_path
from reconciler.manifest.policy import PolicySource, evaluate_policies
from reconciler.manifest.schema import POLICY_KIND
from reconciler.manifest.yamlsource import decode_source, parse_documents


def load_policies(path: str | Path) -> tuple[PolicySource, ...]:
    """The policies of a directory (or file) of ``kind: Policy`` documents.

    Raises:
        ManifestError: a policy is invalid, or the directory holds other documents (keep
            central policies apart from the manifests they check).
    """
    strays = _not_policies(Path(path))
    if strays:  # before loading: their own errors (a missing name, a reference) are noise
        raise ManifestError(strays)
    loaded = load_manifests(path)
    if loaded.documents:
        issues = []
        for doc in loaded.documents:
            loc = loaded.location(doc.address)
            issues.append(
                ManifestIssue(
                    loc.file,
                    loc.line,
                    loc.col,
                    f"{doc.address} is not a policy: a --policies directory holds only "
                    "kind: Policy documents",
                )
            )
        raise ManifestError(issues)
    return loaded.policies


def _not_policies(path: Path) -> list[ManifestIssue]:
    """An issue at each document under ``path`` that is no ``kind: Policy`` (files that do
    not read as YAML are left to ``load_manifests`` to report)."""
    files = manifest_files(path)[0] if path.is_dir() else [path]
    issues = []
    for file in files:
        try:
            text, problem = decode_source(read_limited(file, MAX_MANIFEST_BYTES))
        except (OSError, FileRefused):
            continue
        if text is None or problem is not None:
            continue
        documents, _ = parse_documents(text)
        for doc in documents:
            data = doc.data if isinstance(doc.data, dict) else {}
            kind, name = data.get("kind"), data.get("name")
            if kind == POLICY_KIND:
                continue
            what = "this document"
            for manifest_kind, address_kind in MANIFEST_KINDS.items():
                if kind == manifest_kind and isinstance(name, str):
                    what = address_of(address_kind, name)
            issues.append(
                ManifestIssue(
                    display_path(file),
                    doc.start.line,
                    doc.start.col,
                    f"{what} is not a policy: a --policies directory holds only kind: Policy "
                    "documents",
                )
            )
    return issues


def check_policies(
    manifests: ManifestSet, extra: Iterable[PolicySource] = ()
) -> tuple[PolicyWarning, ...]:
    """Run the manifests' policies (and ``extra`` ones) over every document.

    Returns:
        The advisory findings, as plan warnings, sorted by place.

    Raises:
        ManifestError: an ``extra`` policy has the name of one of the manifests' (or of an
            ``extra`` one before it): their findings could not be told apart.
        PolicyError: a mandatory rule fails on some resource (or cannot be checked on it);
            each issue names the resource's ``file:line:col``, the rule's message and policy.
    """
    policies = [*manifests.policies, *extra]
    if not policies:
        return ()
    duplicates = duplicate_policies(policies)  # a central one named as one of the manifests
    if duplicates:
        raise ManifestError(duplicates)
    documents = [(doc, manifests.location(doc.address)) for doc in manifests.documents]
    findings = evaluate_policies(policies, documents)
    mandatory = [f.issue() for f in findings if f.level == "mandatory"]
    if mandatory:
        raise PolicyError(mandatory, [f.issue() for f in findings if f.level != "mandatory"])
    return tuple(
        PolicyWarning(
            address=f.address,
            location=str(f.location),
            policy=f.policy,
            rule=f.rule,
            message=f.message,
        )
        for f in findings
    )

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
from reconciler.manifest import ManifestSet, load_manifests
from reconciler.manifest.policy import PolicySource, evaluate_policies


def load_policies(path: str | Path) -> tuple[PolicySource, ...]:
    """The policies of a directory (or file) of ``kind: Policy`` documents.

    Raises:
        ManifestError: a policy is invalid, or the directory holds other documents (keep
            central policies apart from the manifests they check).
    """
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


def check_policies(
    manifests: ManifestSet, extra: Iterable[PolicySource] = ()
) -> tuple[PolicyWarning, ...]:
    """Run the manifests' policies (and ``extra`` ones) over every document.

    Returns:
        The advisory findings, as plan warnings, sorted by place.

    Raises:
        PolicyError: a mandatory rule fails on some resource (or cannot be checked on it);
            each issue names the resource's ``file:line:col``, the rule's message and policy.
    """
    policies = [*manifests.policies, *extra]
    if not policies:
        return ()
    documents = [(doc, manifests.location(doc.address)) for doc in manifests.documents]
    findings = evaluate_policies(policies, documents)
    mandatory = [f.issue() for f in findings if f.level == "mandatory"]
    if mandatory:
        raise PolicyError(mandatory)
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

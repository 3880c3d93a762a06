"""Secret values the manifests name, read at the moment they are needed, never stored."""

from __future__ import annotations

from collections.abc import Callable

from reconciler.engine.desired import desired_resources
from reconciler.engine.planner import targeted_addresses
from reconciler.errors import ManifestError, ManifestIssue, PlanError
from reconciler.manifest import ManifestSet
from reconciler.state import fingerprint_secret


class SecretSource:
    """Reads secret values named by the manifests, at the moment they are needed."""

    def __init__(self, manifests: ManifestSet) -> None:
        self._refs = tuple(
            (res.address, path)
            for res in desired_resources(manifests.documents)
            for path, _ in res.secrets
        )
        self._known = frozenset(self._refs)
        self._cache: dict[tuple[str, str], str] = {}
        self._manifests = manifests

    def __call__(self, address: str, path: str) -> str:
        key = (address, path)
        if key not in self._cache:
            if key not in self._known:
                raise PlanError(
                    f"{address}: no secret reference at {path} in the manifests; "
                    "the saved plan and the manifests disagree, run `reconciler plan` again"
                )
            # the manifests read it: one lookup, errors at the place the reference is written
            self._cache[key] = self._manifests.resolve_secret(address, path)
        return self._cache[key]

    @property
    def references(self) -> tuple[tuple[str, str], ...]:
        """``(address, field path)`` of every secret the manifests name."""
        return self._refs

    def fingerprinter(self, salt: str) -> Callable[[str, str], str]:
        return lambda address, path: fingerprint_secret(salt, self(address, path))

    def check_all(self, targets: tuple[str, ...] = ()) -> None:
        """Resolve every secret now (with ``targets``: those of the targeted addresses), so
        a missing variable fails before any change."""
        issues: list[ManifestIssue] = []
        wanted = targeted_addresses(self._manifests.documents, targets) if targets else None
        for address, path in sorted(self._refs):
            if wanted is not None and address not in wanted:
                continue
            try:
                self(address, path)
            except ManifestError as err:
                issues.extend(err.issues)
        if issues:
            raise ManifestError(issues)

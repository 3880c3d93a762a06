"""Secret values the manifests name, read at the moment they are needed, never stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.engine.desired import desired_resources
from reconciler.engine.planner import targeted_addresses
from reconciler.errors import ManifestError, ManifestIssue, PlanError
from reconciler.manifest import ManifestSet, resolve_secret
from reconciler.state import fingerprint_secret


class SecretSource:
    """Reads secret values named by the manifests, at the moment they are needed."""

    def __init__(self, manifests: ManifestSet) -> None:
        self._refs = {
            (res.address, path): ref
            for res in desired_resources(manifests.documents)
            for path, ref in res.secrets
        }
        self._base = Path(getattr(manifests, "base_dir", None) or ".")
        self._cache: dict[tuple[str, str], str] = {}
        self._manifests = manifests

    def __call__(self, address: str, path: str) -> str:
        key = (address, path)
        if key not in self._cache:
            ref = self._refs.get(key)
            if ref is None:
                raise PlanError(
                    f"{address}: no secret reference at {path} in the manifests; "
                    "the saved plan and the manifests disagree, run `reconciler plan` again"
                )
            self._cache[key] = resolve_secret(
                _secret_ref(ref),
                self._base,
                location=self._location(address, path),
                field_path=path,
                root=getattr(self._manifests, "secret_root", None),
            )
        return self._cache[key]

    def _location(self, address: str, path: str) -> Any:
        """Where the reference is written, so a missing secret names ``file:line:col``."""
        try:
            return self._manifests.location(address, path)
        except (KeyError, AttributeError):
            return None

    @property
    def references(self) -> tuple[tuple[str, str], ...]:
        """``(address, field path)`` of every secret the manifests name."""
        return tuple(self._refs)

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


def _secret_ref(ref: dict[str, Any]) -> Any:
    from reconciler.manifest import SecretRef

    return SecretRef.model_validate({k: v for k, v in ref.items() if v is not None})

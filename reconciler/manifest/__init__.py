"""Manifests: YAML files -> typed, validated, position-aware desired state (layer 4).

Public API (see docs/architecture.md, "Manifests")::

    load_manifests(path) -> ManifestSet        # raises ManifestError listing every issue
    ManifestSet.documents / get / by_kind / location / credentials / resolve_secret
    Document(kind, name, spec, protect, ignore_changes).address / .remote_name
    AgentSpec, EnvironmentSpec, VaultSpec (CredentialSpec), DeploymentSpec (AgentPin)
    SecretRef, resolve_secret, iter_secret_refs
    manifest_json_schema()

Modules, each with one job: ``yamlsource`` (bytes -> data + positions), ``fields`` (shared
field types), ``agent``/``environment``/``vault``/``deployment`` (spec models), ``secret``,
``document``, ``messages`` (pydantic errors -> sentences), ``loader`` (files -> documents),
``manifestset`` (the documents of a run and where each is written), ``schema``.
Imports only pydantic, PyYAML, the standard library and ``reconciler.errors``.
"""

from __future__ import annotations

from .agent import AgentSpec, McpServer, McpToolset, ModelConfig, Skill
from .deployment import AgentPin, Budget, DeploymentSpec, Schedule
from .document import SPEC_MODELS, Document, Spec
from .environment import CloudConfig, EnvironmentSpec, LimitedNetworking, Packages
from .fields import MAX_USER_METADATA_KEYS
from .loader import load_manifests
from .manifestset import DocumentSource, ManifestSet
from .schema import manifest_json_schema
from .secret import SecretRef, iter_secret_refs, resolve_secret
from .vault import CredentialSpec, VaultSpec
from .yamlsource import SourceLocation

__all__ = [
    "MAX_USER_METADATA_KEYS",
    "SPEC_MODELS",
    "AgentPin",
    "AgentSpec",
    "Budget",
    "CloudConfig",
    "CredentialSpec",
    "DeploymentSpec",
    "Document",
    "DocumentSource",
    "EnvironmentSpec",
    "LimitedNetworking",
    "ManifestSet",
    "McpServer",
    "McpToolset",
    "ModelConfig",
    "Packages",
    "Schedule",
    "SecretRef",
    "Skill",
    "SourceLocation",
    "Spec",
    "VaultSpec",
    "iter_secret_refs",
    "load_manifests",
    "manifest_json_schema",
    "resolve_secret",
]

"""The library behind ``drift``, ``import`` and ``fmt``: what a CI job or a GitOps bot calls.

Each function does what one command does, minus flags and rendering, and prints nothing:

    report = asyncio.run(drift(settings))                      # DriftReport; has_drift
    result = asyncio.run(import_resource(settings, "agent.coder", "agent_01..."))
    result = asyncio.run(import_unmanaged(settings, Path("manifests")))
    report = format_paths([Path("manifests")], check=True)     # FormatReport; changed

``settings`` is any object with the attributes of ``reconciler.operations.Settings`` (this
module sits beside ``operations`` and does not import it). Detection and derivation are pure
(``engine.drift``, ``engine.derive``); this module reads the manifests and the lockfile,
talks to the provider (one list per kind, plus the version history of changed agents), tags
adopted objects with the ownership metadata and records them under the apply lock.

Formatting uses ruamel.yaml, which keeps comments: a comment stays after the key it follows,
also when ``fmt`` moves that key. ``fmt`` refuses a file it cannot format without losing a
comment or changing what the YAML means, and says so.
"""

from __future__ import annotations

from reconciler.engine.drift import Unmanaged
from reconciler.errors import FormatError
from reconciler.gitops.adopt import Adopted, ImportResult, import_resource
from reconciler.gitops.common import Workspace
from reconciler.gitops.drift import drift
from reconciler.gitops.fmt import (
    FormatReport,
    dump_documents,
    format_paths,
    format_text,
    manifest_files,
)
from reconciler.gitops.unmanaged import UnmanagedImport, import_unmanaged

__all__ = [
    "Adopted",
    "FormatError",
    "FormatReport",
    "ImportResult",
    "Unmanaged",
    "UnmanagedImport",
    "Workspace",
    "drift",
    "dump_documents",
    "format_paths",
    "format_text",
    "import_resource",
    "import_unmanaged",
    "manifest_files",
]

"""Layer 2: the application, the one library API behind the commands. Returns data; prints nothing.

Each use case is one function in one module, doing what one command does minus flags and
rendering, so a program (a CI job, a GitOps bot) can drive the reconciler without click:

    workspace.py  Settings (where things are), connect, observe, the apply lock, origins
    secrets.py    SecretSource: secret values read when needed, never stored
    plan.py       make_plan: load, refresh, build the plan (PlanChoices: what it is asked)
    planfile.py   save_plan / load_plan: a plan bound to the manifests it was made from
    apply.py      apply: execute a plan under the apply lock, every outcome recorded
    drift.py      drift: live state vs the lockfile and the manifests
    adopt.py      import ADDR ID: adopt one existing object
    unmanaged.py  import --all-unmanaged: manifests for what nothing owns, and adopt it
    fmt.py        fmt: canonical formatting of manifests that keeps comments (ruamel.yaml)
    policies.py   check_policies / load_policies: kind: Policy rules (CEL) over the manifests

    settings = Settings(manifests=Path("manifests"), lockfile=Path("state/reconciler.lock"))
    result = asyncio.run(make_plan(settings))
    print(result.plan.summary)

The command line imports this package (and ``reconciler.render``, ``reconciler.errors``)
only (and ``reconciler.provider.local`` for ``provider serve``, which runs the local
provider as a server); the names below include the types its results carry.

    state.py      state / unlock: the state's entries, history, migration and the lock
    session.py    run: which deployment a session targets
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# ``apply``, ``drift`` and ``rollback`` are imported here, not on first use: each is also the
# name of its submodule, which importing the submodule would bind here instead.
from reconciler.app.apply import ApplyResult, apply
from reconciler.app.drift import drift
from reconciler.app.plan import PlanChoices, PlanResult, make_plan
from reconciler.app.planfile import check_plan_out, load_plan, save_plan
from reconciler.app.policies import check_policies, load_policies
from reconciler.app.rollback import RollbackResult, rollback
from reconciler.app.workspace import DEFAULT_DB, Settings, connect, observe, provider_origin
from reconciler.engine.executor import ApplyReport, Outcome, StopRequest
from reconciler.engine.model import CHANGE_TYPES, Action, Plan, forgets_only
from reconciler.engine.staleness import stale_actions
from reconciler.errors import FormatError
from reconciler.lazy import lazy_attributes
from reconciler.manifest import ManifestSet, load_manifests, manifest_json_schema
from reconciler.manifest.files import IGNORE_FILE, may_hold_documents
from reconciler.manifest.files import yaml_files as manifest_files

if TYPE_CHECKING:
    from reconciler.app.adopt import ImportResult, import_resource
    from reconciler.app.adoptions import Adopted
    from reconciler.app.fmt import (
        FormatReport,
        dump_documents,
        format_paths,
        format_text,
    )
    from reconciler.app.unmanaged import UnmanagedImport, import_unmanaged
    from reconciler.engine.derive import KIND_FILES, SecretVariable, Skipped
    from reconciler.engine.unmanaged import Unmanaged
    from reconciler.runtime import ManagedRuntime

#: Names loaded on first use (PEP 562), -> the module that defines them: what only ``import``,
#: ``fmt`` and ``run`` need stays out of ``plan`` and ``apply`` (``tests/test_startup.py``).
_LAZY = {
    "Adopted": "reconciler.app.adoptions",
    "ImportResult": "reconciler.app.adopt",
    "import_resource": "reconciler.app.adopt",
    "FormatReport": "reconciler.app.fmt",
    "dump_documents": "reconciler.app.fmt",
    "format_paths": "reconciler.app.fmt",
    "format_text": "reconciler.app.fmt",
    "UnmanagedImport": "reconciler.app.unmanaged",
    "import_unmanaged": "reconciler.app.unmanaged",
    "KIND_FILES": "reconciler.engine.derive",
    "SecretVariable": "reconciler.engine.derive",
    "Skipped": "reconciler.engine.derive",
    "Unmanaged": "reconciler.engine.unmanaged",
    "ManagedRuntime": "reconciler.runtime",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "CHANGE_TYPES",
    "DEFAULT_DB",
    "IGNORE_FILE",
    "KIND_FILES",
    "Action",
    "Adopted",
    "ApplyReport",
    "ApplyResult",
    "FormatError",
    "FormatReport",
    "ImportResult",
    "ManagedRuntime",
    "ManifestSet",
    "Outcome",
    "Plan",
    "PlanChoices",
    "PlanResult",
    "RollbackResult",
    "SecretVariable",
    "Settings",
    "Skipped",
    "StopRequest",
    "Unmanaged",
    "UnmanagedImport",
    "apply",
    "check_plan_out",
    "check_policies",
    "connect",
    "drift",
    "dump_documents",
    "forgets_only",
    "format_paths",
    "format_text",
    "import_resource",
    "import_unmanaged",
    "load_manifests",
    "load_plan",
    "load_policies",
    "make_plan",
    "manifest_files",
    "manifest_json_schema",
    "may_hold_documents",
    "observe",
    "provider_origin",
    "rollback",
    "save_plan",
    "stale_actions",
]

"""The layers of docs/architecture.md, enforced: parse every module with ast, check imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "reconciler"

#: lower number = higher layer; a module may import only its own package or higher numbers
#: (launch: the console script's process entry, above the command line it starts; __main__:
#: ``python -m reconciler``, which starts that entry)
LEVELS = {
    "__main__": -1,
    "cli": 1,
    "launch": 0,
    "render": 2,
    "app": 2,
    "engine": 3,
    "runtime": 3,
    "manifest": 4,
    "state": 4,
    "provider": 5,
    "errors": 6,
    "lean": 6,
    "__init__": 6,
    # the vocabulary (kinds, addresses, ownership tags, default paths), beneath every layer
    "kinds": 7,
    # a package's names imported on first use (PEP 562), beneath every layer
    "lazy": 7,
    # the type of a decoded JSON object, beneath every layer
    "jsontypes": 7,
}
ENGINE_FORBIDDEN = {
    "httpx",
    "click",
    "yaml",
    "os",
    "pathlib",
    "io",
    "shutil",
    "tempfile",
    "uvicorn",
    "fastapi",
}


#: what the command line may import: the application layer, the renderers, the error tree
#: (its one handler maps errors to exit codes), the vocabulary beneath every layer (default
#: paths, the JSON object type), and the local provider for ``provider serve`` (which runs it as a server, not as
#: a library)
CLI_MAY_IMPORT = (
    "reconciler.cli",
    "reconciler.app",
    "reconciler.render",
    "reconciler.errors",
    "reconciler.kinds",
    "reconciler.jsontypes",
)
CLI_SERVES = "reconciler.provider.local"
#: third-party libraries confined to the modules (path prefixes) that own them
CONFINED = {
    "httpx": ("provider/",),
    # and the local provider's reading of a skill upload's SKILL.md frontmatter, as the
    # server it emulates does (not manifest parsing: no positions, no schema)
    "yaml": ("manifest/", "provider/local/skill_bundle.py"),
    "ruamel": ("manifest/", "app/fmt.py"),
    "psycopg": ("state/postgres/",),
}


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py"))


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _absolute(path: Path, module: str | None, level: int) -> str:
    """The absolute name of a relative import (``from .x import y`` in ``reconciler/a/b.py``)."""
    # the package holding the module (for ``__init__.py``: the package itself)
    parts = ["reconciler", *path.relative_to(ROOT).with_suffix("").parts][:-1]
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node.module, node.level) if node.level else node.module
            if not module:
                continue
            out.append((module, node.lineno))
            # "from reconciler import engine" imports a package too
            if module.count(".") < 2 and module.startswith("reconciler"):
                out.extend((f"{module}.{a.name}", node.lineno) for a in node.names)
    return out


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_layers(path: Path) -> None:
    pkg = _package(path)
    level = LEVELS[pkg]
    rel = str(path.relative_to(ROOT))
    for name, line in _imports(path):
        top = name.split(".")[0]
        where = f"reconciler/{rel}:{line} imports {name}"
        if top == "deepdiff":
            assert rel == "engine/diff.py", f"{where}: only engine/diff.py may use deepdiff"
        if pkg == "engine":
            assert top not in ENGINE_FORBIDDEN, f"{where}: the engine does no I/O"
        if top in CONFINED:
            assert rel.startswith(CONFINED[top]), f"{where}: only {CONFINED[top]} may use {top}"
        if pkg == "cli" and top == "reconciler" and name != "reconciler":
            assert name.startswith(CLI_MAY_IMPORT) or name.startswith(CLI_SERVES), (
                f"{where}: the command line imports only {CLI_MAY_IMPORT}"
            )
        if top != "reconciler" or name == "reconciler":
            continue
        target = name.split(".")[1]
        if not (ROOT / target).is_dir() and not (ROOT / f"{target}.py").is_file():
            target = "__init__"  # an attribute of the package root, e.g. __version__
        if rel.startswith("provider/local/"):
            assert name.startswith("reconciler.provider.local"), (
                f"{where}: the local provider imports nothing above itself"
            )
        if target == pkg:
            continue
        assert target in LEVELS, f"{where}: unknown package"
        assert LEVELS[target] > level, f"{where}: a layer may import only layers below it"


def test_the_vocabulary_imports_nothing_from_reconciler() -> None:
    tree = ast.parse((ROOT / "kinds.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"kinds.py:{node.lineno}: a relative import"
    imported = [name for name, _ in _imports(ROOT / "kinds.py")]
    assert imported, "kinds.py imports at least the standard library"
    assert not [n for n in imported if n.split(".")[0] == "reconciler"], imported


def test_engine_never_opens_files() -> None:
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"{path}:{node.lineno}: the engine opens a file"


def test_relative_imports_are_checked() -> None:
    """``from . import x`` and ``from ..engine import y`` resolve to absolute names."""
    path = ROOT / "app" / "plan.py"
    assert _absolute(path, "workspace", 1) == "reconciler.app.workspace"
    assert _absolute(path, "engine.model", 2) == "reconciler.engine.model"
    assert _absolute(ROOT / "app" / "__init__.py", "plan", 1) == "reconciler.app.plan"


def test_no_private_name_crosses_a_module() -> None:
    """``from reconciler.x import _private`` is a seam nobody declared."""
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reconciler"):
                private = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
                assert not private, f"{path}:{node.lineno} imports private {private}"

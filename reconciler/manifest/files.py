"""Which files a manifests directory holds: YAML files, less what ``.reconcilerignore`` names.

A manifests directory may hold YAML that is not a manifest (a CI workflow, a template).
``.reconcilerignore`` at its top lists such files in gitignore syntax; the patterns are
matched by pathspec, the maintained implementation of git's rules, so ``ci/``,
``*.tmpl.yaml`` and ``!keep.tmpl.yaml`` mean what they mean to git. Hidden files and
directories are never read. Nothing here parses YAML.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

MANIFEST_SUFFIXES = (".yaml", ".yml")

#: A gitignore-syntax file at the top of the manifests directory naming files to skip.
IGNORE_FILE = ".reconcilerignore"


def ignore_matcher(root: Path) -> Callable[[str], bool] | None:
    """``matches(path relative to root)`` from ``root/.reconcilerignore``, or None without one."""
    ignore = root / IGNORE_FILE
    if not ignore.is_file():
        return None
    # imported here: only a directory that has the file pays for it
    from pathspec import GitIgnoreSpec

    spec = GitIgnoreSpec.from_lines(ignore.read_text(encoding="utf-8").splitlines())
    return spec.match_file


def manifest_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(YAML files to read, YAML files ``.reconcilerignore`` leaves out) under ``root``,
    searched recursively, each sorted by path relative to ``root``.

    Example: with ``ci/`` in ``manifests/.reconcilerignore``,
    ``manifest_files(Path("manifests"))`` is
    ``([.../agents.yaml, ...], [.../ci/workflow.yaml])``.
    """
    matches = ignore_matcher(root)
    found: list[tuple[str, Path]] = []
    skipped: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(MANIFEST_SUFFIXES):
                full = Path(dirpath) / name
                rel = full.relative_to(root).as_posix()
                (skipped if matches is not None and matches(rel) else found).append((rel, full))
    return [path for _, path in sorted(found)], [path for _, path in sorted(skipped)]

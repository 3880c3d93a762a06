"""Atomic replacement of a text file: manifests rewritten by ``fmt`` or ``import``, plan files.

The lockfile has its own writer (``lockfile.py``: backup, kept mode, directory fsync); this
one is for files a reader must see whole or not at all, and nothing more.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text``: a temp file in the same folder, fsync, ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

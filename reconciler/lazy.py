"""``lazy_attributes``: a package's names imported on first use (PEP 562), not with the package.

A package that re-exports names for its callers would otherwise import every module behind
them at once: ``reconciler.provider`` the embedded provider's server stack, ``reconciler.app``
what only ``import``, ``fmt`` and ``run`` use. Beneath every layer; the standard library only.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each name of ``homes`` from the module named there.

    A name is imported once; it is then set on the package, so later look-ups never come
    here. Example (in a package's ``__init__.py``)::

        __getattr__ = lazy_attributes(__name__, {"Pager": "reconciler.provider.pager"})
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    return __getattr__

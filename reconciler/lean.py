"""``LeanModel``: a pydantic base for frozen models held by the thousand (plan, lockfile, manifests).

pydantic keeps, on every instance, its own set of the field names it was given
(``__pydantic_fields_set__``): about 700 bytes for ten fields, more than the instance's values.
A plan of 11,000 resources holds tens of thousands of such models (documents and their specs,
lockfile entries, actions). A frozen model never adds to that set, and ``model_copy`` gives the
copy a set of its own, so instances given the same fields can share one set: the plan's peak
memory falls by about a tenth (``bench/RESULTS.md``). Nothing else changes; nothing here does
I/O.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["LeanModel"]

#: The one shared set of each combination of given field names.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


class LeanModel(BaseModel):
    """A ``BaseModel`` whose instances share their ``model_fields_set`` (use it frozen)."""

    def model_post_init(self, context: Any, /) -> None:
        given = self.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(given), given)
        object.__setattr__(self, "__pydantic_fields_set__", shared)

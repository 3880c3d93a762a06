"""CEL's runtime equality (``==``, ``!=``, ``in`` over a list) and numeric ordering for the
policy rules.

cel-spec defines equality at run time as heterogeneous (langdef, "Equality"), and
Kubernetes CEL, whose rules our policies are written like, follows it::

    type(x) in [double, int, uint] && type(y) in [double, int, uint] ? numericEquals(x, y)
        : type(x) == type(y) ? x == y
        : false

So values of distinct types are not equal (``3 != 'latest'`` is true, ``null == 1`` false,
``true == 1`` false), numbers compare on one number line (``1 == 1.0``), lists and maps
compare element by element with the same rule (a false element makes them unequal, else an
error element makes an error), and ``x in list`` is true when an element equals ``x``.
``cel-python`` (``celpy``) keeps the older homogeneous rule, where such a comparison is a
"no such overload" error; it lets a program replace an operator's function
(``Environment.program(..., functions=...)``, layered over ``celpy.evaluation.base_functions``),
which is all this module supplies: ``EQUALITY``.

Ordering (``<``, ``<=``, ``>``, ``>=``) is defined by cel-spec across ``int``, ``uint`` and
``double`` at run time too (langdef, "Numeric values": "comparisons ... are supported across
numeric types"), as Kubernetes runs it: ``1 < 1.5`` is true, where celpy has no overload for
an ``int`` and a ``double`` (nor ``int`` and ``uint`` one way round). Numbers are ordered
exactly (never through a double), NaN against nothing. Any other pair of distinct types,
a boolean and a number among them, stays an error ("no such overload"), as in CEL.
The string functions (``contains``, ``startsWith``, ``endsWith``, ``matches``) given anything
but strings raise a ``TypeError`` that names what they were given (celpy's says "no such
overload" and nothing more). Nothing here parses or evaluates an expression.

Imported by ``policy.evaluate_policies`` only, so manifests without policies never load CEL.
"""

from __future__ import annotations

from typing import Any

from celpy import celtypes
from celpy.evaluation import CELEvalError, base_functions

_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


def _kind(value: Any) -> str:
    """The CEL type family that equality compares within."""
    if value is None or isinstance(value, celtypes.NullType):
        return "null"
    if isinstance(value, celtypes.BoolType | bool):
        return "bool"  # before numbers: a Python bool (and celpy's) is an int
    if isinstance(value, (*_NUMBERS, int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__  # timestamps, durations, types: equal only to their own


def _equal(a: Any, b: Any) -> Any:
    """``a == b`` as a CEL value: a ``BoolType``, or a ``CELEvalError`` carried on."""
    if isinstance(a, CELEvalError):
        return a
    if isinstance(b, CELEvalError):
        return b
    kind = _kind(a)
    if kind != _kind(b):
        return celtypes.BoolType(False)
    if kind == "null":
        return celtypes.BoolType(True)
    if kind == "number":
        # Python compares int and float exactly; NaN equals nothing, as cel-spec says
        plain_a = float(a) if isinstance(a, float) else int(a)
        plain_b = float(b) if isinstance(b, float) else int(b)
        return celtypes.BoolType(plain_a == plain_b)
    if kind == "list":
        if len(a) != len(b):
            return celtypes.BoolType(False)
        return _all_equal(_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "map":
        if set(a) != set(b):
            return celtypes.BoolType(False)
        return _all_equal(_equal(a[key], b[key]) for key in a)
    return base_functions["_==_"](a, b)  # one type: celpy's own comparison


def _all_equal(results: Any) -> Any:
    """The conjunction of element comparisons: false wins over an error, an error over true."""
    error = None
    for result in results:
        if isinstance(result, CELEvalError):
            error = error or result
        elif not result:
            return celtypes.BoolType(False)
    return error if error is not None else celtypes.BoolType(True)


def _not_equal(a: Any, b: Any) -> Any:
    result = _equal(a, b)
    return result if isinstance(result, CELEvalError) else celtypes.BoolType(not result)


def _contains(item: Any, container: Any) -> Any:
    """``item in container``: a list holds an element equal to ``item``; a map, such a key
    (celpy's own test for anything but a list)."""
    if isinstance(item, CELEvalError):
        return item
    if isinstance(container, CELEvalError):
        return container
    if not isinstance(container, list):
        return base_functions["_in_"](item, container)
    error = None
    for element in container:
        result = _equal(element, item)
        if isinstance(result, CELEvalError):
            error = error or result
        elif result:
            return celtypes.BoolType(True)
    return error if error is not None else celtypes.BoolType(False)


def _ordering(name: str) -> Any:
    """celpy's ``name`` operator (``_<_``...), with numbers of distinct types ordered on one
    number line and any other two distinct types refused."""
    base = base_functions[name]

    def compare(a: Any, b: Any) -> Any:
        if isinstance(a, CELEvalError):
            return a
        if isinstance(b, CELEvalError):
            return b
        kind_a, kind_b = _kind(a), _kind(b)
        if kind_a != kind_b:
            # the evaluator turns a TypeError into CEL's "no matching overload" error
            raise TypeError(f"no such overload: {type(a).__name__} {name} {type(b).__name__}")
        if kind_a == "number" and type(a) is not type(b):
            plain_a = float(a) if isinstance(a, float) else int(a)
            plain_b = float(b) if isinstance(b, float) else int(b)
            return base(plain_a, plain_b)  # Python orders int and float exactly
        return base(a, b)

    compare.__name__ = base.__name__
    return compare


_WORDS = {
    "IntType": "an integer",
    "UintType": "an unsigned integer",
    "DoubleType": "a number",
    "StringType": "a string",
    "BytesType": "bytes",
    "BoolType": "a boolean",
    "ListType": "a list",
    "MapType": "a map",
    "NullType": "null",
    "NoneType": "null",
}


def _string_function(name: str) -> Any:
    """celpy's ``name`` (``matches``, ``startsWith``...), which says only "no such overload"
    when given anything but strings: the error names what it was given."""
    base = base_functions[name]

    def call(text: Any, arg: Any) -> Any:
        if name == "contains" and isinstance(text, list | dict):
            return base(text, arg)  # celpy's own extension: a list's or map's contains()
        if not isinstance(text, celtypes.StringType) or not isinstance(arg, celtypes.StringType):
            given = [_WORDS.get(type(v).__name__, type(v).__name__) for v in (text, arg)]
            raise TypeError(f"{name}() is called on {given[0]} with {given[1]}, but takes strings")
        return base(text, arg)

    call.__name__ = name
    return call


#: the operator functions to give ``Environment.program``
EQUALITY: dict[str, Any] = {
    "_==_": _equal,
    "_!=_": _not_equal,
    "_in_": _contains,
    **{name: _ordering(name) for name in ("_<_", "_<=_", "_>_", "_>=_")},
    **{name: _string_function(name) for name in ("contains", "startsWith", "endsWith", "matches")},
}

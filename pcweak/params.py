"""Checking keyword parameters given as text (``--param KEY=VALUE``) against a function's signature."""
from __future__ import annotations

import functools
import inspect
import math
import typing
from typing import Annotated, Any, Callable, Iterable, Mapping, NamedTuple

import numpy as np


class Range(NamedTuple):
    """A numeric setting's allowed values: finite numbers from ``low`` (excluded when
    ``low_open``) to ``high``, integers only when ``integer``. Declared in a signature as
    ``Annotated[int, Range(1, integer=True)]``: ``check_kwargs`` enforces it on each value (each
    element of a list) given as ``--param``, ``check_ranges`` on a call's arguments (the
    weak-label simulators, through ``ranges_checked``)."""
    low: float
    high: float = math.inf
    integer: bool = False
    low_open: bool = False

    def span(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"

    def text(self) -> str:
        return f"{'an integer' if self.integer else 'a number'} {self.span()}"

    def holds(self, value: Any) -> bool:
        kinds = (int, np.integer) if self.integer else (int, float, np.integer, np.floating)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(float(value)):
            return False
        v = float(value)
        return (v > self.low if self.low_open else v >= self.low) and v <= self.high

    def admits(self, value: Any) -> bool:
        """``holds`` for a value, or for each element of a list or tuple."""
        return all(self.holds(v) for v in (value if isinstance(value, (list, tuple)) else [value]))


COUNT_RANGE = Range(1, integer=True)
COUNT0_RANGE = Range(0, integer=True)
Count = Annotated[int, COUNT_RANGE]  # how many (rooms, draws, repeats, steps): at least one
Count0 = Annotated[int, COUNT0_RANGE]  # how many, where none is a choice (generated rooms beside real scans)
Fraction = Annotated[float, Range(0, 1)]  # a share or a chance
NonNegative = Annotated[float, Range(0)]  # a length or a noise scale
Seed = Annotated[int, COUNT0_RANGE]  # a random generator's seed: numpy's take integers >= 0


def check_kwargs(fn: Callable[..., Any], params: dict[str, Any], owner: str, filled: Iterable[str] = (),
                 extra: Iterable[str] = ()) -> None:
    """Raise ValueError when ``params`` holds a name ``fn`` does not take (or one in ``filled``,
    which the caller sets itself), or a value whose type does not fit the parameter's default:
    a bool default wants true/false, an int default an integer, a float default a number, a str
    default a string; None passes where the annotation allows it. Names in ``extra`` pass.
    ``owner`` names the labeller or benchmark in the message."""
    filled, extra = set(filled), set(extra)
    sig = {n: q for n, q in inspect.signature(fn).parameters.items()
           if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY) and n not in filled}
    for key, value in params.items():
        if key in extra:
            continue
        if key not in sig:
            raise ValueError(f"--param {key}: {owner} has no parameter {key!r}; it takes {', '.join(sorted(set(sig) | extra))}")
        if _non_finite(value):
            raise ValueError(f"--param {key}={value!r}: {owner} expects a finite number")
        default, note = sig[key].default, str(sig[key].annotation)
        if value is None and "None" in note:
            continue
        if isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        else:
            ok, want = True, ""
        if not ok:
            raise ValueError(f"--param {key}={value!r}: {owner} expects {want} (default {default!r})")
        bound = declared_range(fn, key)
        if bound is not None and not bound.admits(value):
            many = isinstance(value, (list, tuple))
            raise ValueError(f"--param {key}={value!r}: {owner} expects {'each' if many else 'a value'} {bound.span()}")


def declared_ranges(fn: Callable[..., Any]) -> dict[str, Range]:
    """The ``Range`` of each of ``fn``'s parameters that declares one
    (``Annotated[..., Range(...)]``, the Annotated outermost: ``Annotated[int | None, ...]``);
    empty also where ``fn``'s annotations name what only a type checker imports (no range can
    be declared there: ``tests/test_bench.py`` checks that every benchmark's resolve)."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except NameError:
        return {}
    out = {}
    for name, hint in hints.items():
        bound = next((m for m in _metadata(hint) if isinstance(m, Range)), None)
        if bound is not None and name != "return":
            out[name] = bound
    return out


def _metadata(hint: Any) -> tuple[Any, ...]:
    """The ``Annotated`` metadata of a resolved hint. Python 3.10's ``get_type_hints`` wraps the
    hint of a parameter that defaults to None in ``Optional`` (``Annotated[int | None, R] = None``
    comes back as ``Optional[Annotated[...]]``; 3.11 stopped doing so), so the metadata is looked
    for one union deep as well."""
    if hasattr(hint, "__metadata__"):
        return hint.__metadata__
    import types
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next((a.__metadata__ for a in typing.get_args(hint) if hasattr(a, "__metadata__")), ())
    return ()


def declared_range(fn: Callable[..., Any], name: str) -> Range | None:
    """The ``Range`` of ``fn``'s parameter ``name``, if it declares one."""
    return declared_ranges(fn).get(name)


def check_ranges(fn: Callable[..., Any], owner: str, values: dict[str, Any]) -> None:
    """Raise ValueError ``"{owner}: {name} must be {range}, got {value}"`` for the first of
    ``values`` (parameter name -> value) outside the range ``fn`` declares for it, each element
    of a list or tuple on its own; None passes (not given), as do names that declare none."""
    bounds = declared_ranges(fn)
    for name, value in values.items():
        bound = bounds.get(name)
        if bound is not None and value is not None and not bound.admits(value):
            many = isinstance(value, (list, tuple))
            raise ValueError(f"{owner}: {name} must be {'each ' if many else ''}{bound.text()}, got {value!r}")


def ranges_checked(owner: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: each call of the function first checks its arguments against the ranges its
    signature declares (``check_ranges``, ``owner`` naming it in the message), so no caller can
    skip the check; the signature, annotations and docstring stay the function's own."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check_ranges(fn, owner, sig.bind(*args, **kwargs).arguments)
            return fn(*args, **kwargs)
        return checked
    return wrap


def _non_finite(value: Any) -> bool:
    """Whether ``value`` is, or holds (in a list, tuple or mapping), a NaN or infinite number: no
    setting takes one (a NaN weight or scale would spread NaN through the results silently)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def _fits(value: Any, kind: Any) -> tuple[bool, str]:
    """Whether ``value`` (parsed from JSON or given in Python) fits the annotation ``kind``."""
    import types
    import typing
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        opts = typing.get_args(kind)
        results = [_fits(value, o) for o in opts]
        return any(ok for ok, _ in results), " or ".join(w for _, w in results)
    if kind is type(None):
        return value is None, "null"
    if kind is Any:
        return True, "anything"
    if kind is bool:
        return isinstance(value, bool), "true or false"
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), "an integer"
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    if kind is str:
        return isinstance(value, str), "a string"
    if origin in (list, tuple) or kind in (list, tuple):
        return isinstance(value, (list, tuple)), "a list"
    if origin is dict or kind is dict:
        return isinstance(value, dict), "a mapping"
    return True, str(kind)


def config_names(cls: type) -> list[str]:
    """Every settable name of the config dataclass ``cls``, nested ones dotted (``graph.k``)."""
    import dataclasses
    import typing
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            out += [f"{f.name}.{n}" for n in config_names(kind)]
        else:
            out.append(f.name)
    return out


def build_config(cls: type, params: dict[str, Any] | None, owner: str) -> Any:
    """An instance of the (possibly nested) config dataclass ``cls`` from ``params``: nested
    mappings (``{"graph": {"k": 8}}``) or dotted names (``{"graph.k": 8}``); a value that is
    already a ``cls`` passes through. Unknown names and values of the wrong type raise
    ValueError naming ``--param NAME`` and ``owner``; range checks are the dataclasses' own
    ``__post_init__``, so every value is checked before any work runs."""
    import dataclasses
    import typing
    if isinstance(params, cls):
        return params
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"{owner}: config must be a {cls.__name__} or a mapping of its settings (nested or dotted "
                        f"names), got {type(params).__name__}")
    flat: dict[str, Any] = {}

    def walk(prefix: str, d: dict[str, Any]) -> None:
        for k, v in d.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict) and any(n.startswith(name + ".") for n in config_names(cls)):
                walk(name + ".", v)
            else:
                flat[name] = v
    walk("", dict(params or {}))
    names = config_names(cls)
    for key in flat:
        if key not in names:
            raise ValueError(f"--param {key}: {owner} has no parameter {key!r}; it takes {', '.join(names)}")

    def make(c: type, prefix: str) -> Any:
        hints = typing.get_type_hints(c)
        kw = {}
        for f in dataclasses.fields(c):
            name, kind = prefix + f.name, hints[f.name]
            if isinstance(kind, type) and dataclasses.is_dataclass(kind):
                kw[f.name] = make(kind, name + ".")
            elif name in flat:
                ok, want = _fits(flat[name], kind)
                if ok and _non_finite(flat[name]):
                    ok, want = False, "a finite number"
                if not ok:
                    raise ValueError(f"--param {name}={flat[name]!r}: {owner} expects {want} (default {f.default!r})")
                kw[f.name] = flat[name]
        try:
            return c(**kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{owner}: {e}") from e
    return make(cls, "")

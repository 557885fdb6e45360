"""Checking keyword parameters given as text (``--param KEY=VALUE``) against a function's signature."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable


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

"""A training run's scene (or frame) lists: names given inline or in a split file, checked
against what the dataset's root holds before any scene is read, so that a partial download or
a mistyped root gives one error naming the setting instead of failing scenes into the run."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from ..textio import read_text

SHOWN = 3  # missing names quoted in an error


def shown(names: Sequence[str]) -> str:
    """The first ``SHOWN`` of ``names``, comma-separated, ``...`` after them when there are more."""
    return ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")


class SplitList(list):
    """A list of names that remembers the split file it was read from (``source``, or None)."""

    source: Path | None = None


def other_layout(root: Path, then: str = ", which data.dataset folder reads") -> str:
    """What a ``data.root`` that holds none of its dataset's scenes holds instead, where pcweak
    reads scenes in it (``collection.enumerate_scenes``): a hint ending in ``then`` (what to do
    with them); empty when it holds none."""
    from ..data.collection import enumerate_scenes
    from ..errors import AddressError
    try:
        n = len(enumerate_scenes(str(root)))
    except AddressError:
        return ""
    return f"it holds {n} scene{'s' if n != 1 else ''} of another layout{then}" if n else ""


def split_names(value: Sequence[str] | str | None, root: str | Path | None, key: str) -> SplitList | None:
    """The names ``value`` gives: a list of names as is, or a split file (one name a line, blank
    lines skipped) found as given or under ``root``; None when ``value`` is None. ``key`` names
    the setting (``data.<key>``) in the error for a split file found nowhere."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        given = Path(value)
        found = given if given.is_file() else (Path(root) / given if root is not None else None)
        if found is None or not found.is_file():
            where = f" nor under data.root {root}" if root is not None else ""
            raise FileNotFoundError(f"data.{key}: split file {str(value)!r} not found as given{where}")
        names = SplitList(line.strip() for line in read_text(found, "a split file").splitlines() if line.strip())
        names.source = found
        return names
    return SplitList(str(v) for v in value)


def check_split(names: Sequence[str], present: Callable[[str], bool], key: str, where: str, hint: str,
                required: bool = True, noun: str = "scenes", purpose: str = "to train on") -> None:
    """ValueError naming ``data.<key>`` when ``names`` is empty (and ``required``) or some of
    them have no scene, or one is listed twice (it would be trained on, or scored, twice an
    epoch): ``present(name)`` says whether the root holds it, ``where`` says where it was looked
    for, ``hint`` what to give instead, ``noun`` what the names are and ``purpose`` what they
    are for."""
    source = getattr(names, "source", None)
    listed = f" listed in {source}" if source is not None else ""
    if not names:
        if required:
            raise ValueError(f"data.{key}: no {noun}{listed} {purpose}; {hint}")
        return
    twice = [n for n, times in Counter(names).items() if times > 1]
    if twice:
        inside = f" in {source}" if source is not None else ""
        raise ValueError(f"data.{key}: {noun} listed more than once{inside}: {shown(twice)} ({len(twice)} in all); "
                         f"each would count once per listing")
    missing = [n for n in names if not present(n)]
    if missing:
        raise ValueError(f"data.{key}: {len(missing)} of the {len(names)} {noun}{listed} are not in {where} "
                         f"({shown(missing)}); {hint}")


def warn_overlap(train: Sequence[str], val: Sequence[str], noun: str = "scenes", key: str = "val_scenes") -> None:
    """A warning naming the validation ``noun`` that are also training ones (the same split
    file given twice, a scene listed in both): their scores are of what the model trained on."""
    trained = set(train)
    both = [n for n in val if n in trained]
    if both:
        import warnings
        warnings.warn(f"data.{key}: {len(both)} of the {len(val)} validation {noun} are also training {noun} ({shown(both)}); "
                      f"their scores are of {noun} the model trains on")


"""Reading the small text files users give pcweak (KITTI labels, results and calibration, id
and split lists, ScanNet alignment and submission files): a binary or otherwise undecodable
file is one ReaderError naming it, not a codec error naming a byte position."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ReaderError


def read_text(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of ``path`` (``what`` names the file's role in the message, e.g. "a KITTI
    result file"); ReaderError naming the file where it is not UTF-8 text."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ReaderError(f"{p}: not UTF-8 text at byte {e.start} ({what} is a text file; a binary file?)") from None

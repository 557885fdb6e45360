"""Reading the small text files users give pcweak (KITTI labels, results and calibration, id
and split lists, ScanNet alignment and submission files, proposal ids): a binary or otherwise
undecodable file is one ReaderError naming it, not a codec error naming a byte position."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ReaderError

if TYPE_CHECKING:
    import numpy as np


def read_text(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of ``path`` (``what`` names the file's role in the message, e.g. "a KITTI
    result file"); ReaderError naming the file where it is not UTF-8 text."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ReaderError(f"{p}: not UTF-8 text at byte {e.start} ({what} is a text file; a binary file?)") from None


def whole_numbers(path: Path, what: str) -> np.ndarray:
    """(L,) int64 of a file of one whole number per line (ScanNet's benchmark files, proposal
    ids); ReaderError naming the file and the first line that is not one (``what`` names a
    value's role, e.g. "a NYU40 class id")."""
    import numpy as np
    data = Path(path).read_bytes()
    try:
        return np.array(data.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        line = next((i for i, t in enumerate(data.splitlines(), 1) if not t.strip().lstrip(b"-+").isdigit()), None)
        where = f"line {line} is not" if line is not None else "a line holds a number too large for"
        raise ReaderError(f"{path}: {where} {what} (one whole number per line)") from None

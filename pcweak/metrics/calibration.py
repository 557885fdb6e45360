"""Calibration of pseudo-label confidences."""
from __future__ import annotations

import numpy as np


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE: sum over equal-width confidence bins of |accuracy - mean confidence| x bin weight."""
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, bool)
    if confidence.size == 0:
        return float("nan")
    b = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    n = np.bincount(b, minlength=bins)
    acc = np.bincount(b, weights=correct, minlength=bins)
    conf = np.bincount(b, weights=confidence, minlength=bins)
    ok = n > 0
    return float(np.sum(np.abs(acc[ok] - conf[ok])) / confidence.size)

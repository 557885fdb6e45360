"""Report plots next to ``pcweak evaluate``'s JSON: per-class IoU bars and a confusion matrix."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_plots(scene, pseudo, out_dir: str | Path, report: dict | None = None) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pcweak.metrics import confusion, iou_from_confusion
    from pcweak.npzio import atomic_write_bytes
    import io
    out_dir = Path(out_dir)
    pseudo.check_against(scene)
    classes = pseudo.classes_with(scene)
    C = len(classes)
    cm = confusion(scene.semantic, pseudo.semantic, C)
    iou = iou_from_confusion(cm)
    present = np.flatnonzero(np.isfinite(iou))
    files = []

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(atomic_write_bytes(out_dir / name, buf.getvalue()))
    from .colors import palette_for
    pal = palette_for(classes) / 255.0
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(present) + 2), 4))
    ax.bar(range(len(present)), iou[present], color=pal[present], edgecolor="black", linewidth=0.5)
    ax.set_xticks(range(len(present)), [classes[i] for i in present], rotation=60, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title(f"{scene.name}: per-class IoU ({pseudo.method}), mIoU {np.nanmean(iou):.3f}")
    save(fig, "per_class_iou.png")
    rows = cm[present][:, list(present) + [C]].astype(np.float64)
    rows = rows / np.maximum(rows.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.45 * len(present) + 3, 0.45 * len(present) + 2))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    names = [classes[i] for i in present]
    ax.set_xticks(range(len(present) + 1), names + ["(none)"], rotation=60, ha="right")
    ax.set_yticks(range(len(present)), names)
    ax.set_xlabel("pseudo-label")
    ax.set_ylabel("ground truth")
    ax.set_title("confusion (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    save(fig, "confusion.png")
    return files

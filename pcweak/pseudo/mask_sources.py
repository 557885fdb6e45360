"""Where 2D masks come from: a folder on disk or the weak-label file (``mask_models`` makes them
with SAM and scores them with a vision-language model).

Folder layout (one file per frame, named by the frame's stem; the mask of ``color/120.jpg``
is ``120.png``)::

    masks/120.png      uint16 (H,W) label map, 0 = no mask, 1..m = masks   (or 120.npy, any int)
    masks/scores.npy   optional (total masks, C) float class scores, rows in frame order
                       (the scene's frame order) then mask id 1..m of each frame

A PNG may also be a one-bit mask (one object) or colour-coded, as annotation tools save them:
each colour one mask, black (and, with an alpha channel, transparent) none; such masks carry
no ids for ``scores.npy`` to follow. In a palette PNG (PASCAL VOC's ``SegmentationObject``) the
index is the mask id and 255, VOC's "void" band along the objects' outlines, is none. Frames
without a mask file are simply not used.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np

from ..errors import ReaderError
from ..scene import Scene, WeakLabels


def load_mask_folder(folder: str | Path, scene: Scene,
                     with_scores: bool = True) -> tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
    """(frame index, label map) pairs for the scene's frames that have a mask file, and the
    optional scores (None, unread, without ``with_scores``)."""
    from PIL import Image
    d = Path(folder)
    if not d.is_dir():
        raise ReaderError(f"--masks: folder {d} not found")
    check_made_for(d, scene)  # before any mask file is read
    out, colour_coded = [], False
    for i, f in enumerate(scene.frames):
        png, npy = d / f"{f.name}.png", d / f"{f.name}.npy"
        try:
            if png.is_file():
                with Image.open(png) as im:
                    lm, palette = np.asarray(im), im.mode == "P"
                colour_coded |= lm.ndim == 3
                lm = image_label_map(png, lm)
                if palette:  # PASCAL VOC's object PNGs: palette index 255 is the "void" band around each object
                    lm = np.where(lm == 255, 0, lm)
            elif npy.is_file():
                lm = np.load(npy, allow_pickle=False)
            else:
                continue
        except ReaderError:
            raise  # image_label_map's, which names the file itself
        except (OSError, ValueError) as e:
            raise ReaderError(f"{png if png.is_file() else npy}: unreadable mask ({e})") from e
        if lm.ndim != 2 or lm.dtype.kind not in "iu":
            raise ReaderError(f"{png if png.is_file() else npy}: expected an (H,W) integer label map, got {lm.shape} {lm.dtype}")
        if lm.size and lm.min() < 0:
            raise ReaderError(f"{png if png.is_file() else npy}: mask id {int(lm.min())}; ids are 0 (no mask) or 1..m")
        out.append((i, lm.astype(np.int64)))
    if not out:
        raise ReaderError(f"--masks: no mask file in {d} matches a frame of {scene.name!r} (expected e.g. {scene.frames[0].name if scene.frames else 'N'}.png)")
    if not (with_scores and (d / "scores.npy").is_file()):
        return out, None
    if colour_coded:
        raise ReaderError(f"{d / 'scores.npy'}: its rows follow each frame's mask ids 1..m, which colour-coded masks do "
                          f"not have; give label maps (uint16 PNG or .npy) with the scores, or leave scores.npy out")
    return out, _load_scores(d / "scores.npy", out, len(scene.classes))


def _load_scores(path: Path, masks: list[tuple[int, np.ndarray]], num_classes: int) -> np.ndarray:
    """``path``'s class scores, checked (``mask_views.check_mask_scores``) against the masks read
    (one row per mask id 1..m of each frame, in frame order) and the scene's classes."""
    from .mask_views import check_mask_scores
    try:
        scores = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ReaderError(f"{path}: unreadable ({e})") from e
    rows = sum(int(lm.max()) if lm.size else 0 for _, lm in masks)
    return check_mask_scores(str(path), scores, rows, num_classes)


def image_label_map(path: Path, image: np.ndarray) -> np.ndarray:
    """(H,W) int64 mask ids of a mask image's pixels (0 = no mask): a label map as it is, a
    one-bit image's set pixels as mask 1, a colour-coded (H,W,3) or (H,W,4) image's colours as
    masks 1..m in the order of their codes (black and fully transparent pixels none). ReaderError
    naming ``path`` for other layouts."""
    if image.ndim == 2 and image.dtype == np.bool_:
        return image.astype(np.int64)
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype.kind != "u":
        raise ReaderError(f"{path}: expected an (H,W) label map or a colour-coded RGB(A) image, got {image.shape} {image.dtype}")
    rgb = image[..., :3].astype(np.int64)
    code = (rgb[..., 0] << 32) | (rgb[..., 1] << 16) | rgb[..., 2]
    none = code == 0
    if image.shape[2] == 4:
        none |= image[..., 3] == 0
    _, ids = np.unique(np.where(none, 0, code + 1), return_inverse=True)
    ids = ids.reshape(code.shape).astype(np.int64)
    return ids if none.any() else ids + 1


MANIFEST = "masks.json"  # what `pcweak masks` made a folder from (cli.cmd_masks)


def check_made_for(folder: Path, scene: Scene) -> None:
    """ReaderError unless the folder's manifest, where it names one, names ``scene`` (its name
    and number of points): masks made on another scene whose frames share names and sizes
    (ScanNet's 0, 20, 40 ... at 640x480) would otherwise lift onto the wrong points."""
    import json
    try:
        made = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return  # no manifest (masks made elsewhere) or an unreadable one: nothing to check
    if not isinstance(made, dict):
        return
    name, points = made.get("scene_name"), made.get("num_points")
    if (name is not None and name != scene.name) or (points is not None and points != scene.num_points):
        raise ReaderError(f"--masks {folder}: made for scene {name!r} ({points} points), not {scene.name!r} "
                          f"({scene.num_points} points)")


def write_mask_file(folder: str | Path, scene: Scene, frame: int, label_map: np.ndarray) -> Path:
    """One frame's label map as ``<frame stem>.png`` (uint16), written atomically."""
    import io
    from PIL import Image
    from ..npzio import atomic_write_bytes
    lm = np.asarray(label_map)
    if lm.max(initial=0) > 65535:
        raise ValueError(f"frame {scene.frames[frame].name}: more than 65535 masks do not fit a uint16 PNG")
    buf = io.BytesIO()
    Image.fromarray(lm.astype(np.uint16)).save(buf, format="PNG")
    return atomic_write_bytes(Path(folder) / f"{scene.frames[frame].name}.png", buf.getvalue())


def write_mask_folder(folder: str | Path, scene: Scene, masks: list[tuple[int, np.ndarray]], scores: np.ndarray | None = None) -> Path:
    """Write masks in the folder layout above (uint16 PNG per frame), each file atomically."""
    import io
    from ..npzio import atomic_write_bytes
    d = Path(folder)
    for i, lm in masks:
        write_mask_file(d, scene, i, lm)
    if scores is not None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(scores, np.float32), allow_pickle=False)
        atomic_write_bytes(d / "scores.npy", buf.getvalue())
    d.mkdir(parents=True, exist_ok=True)
    return d


def masks_from_weak(weak: WeakLabels) -> list[tuple[int, np.ndarray]]:
    """The 2D masks stored in a weak-label file (e.g. simulated with ``weak.masks2d``)."""
    if weak.mask2d is None:
        raise ReaderError("weak labels hold no 2D masks (mask2d); pass --masks DIR")
    return [(int(f), m) for f, m in zip(weak.mask2d_frame, weak.mask2d)]

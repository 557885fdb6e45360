"""2D masks and their class scores from pretrained image models, through ``transformers``.

- ``sam_masks``: Segment Anything's automatic mask generation (a grid of point prompts, the
  three masks per prompt filtered by predicted IoU and stability, box non-maximum suppression),
  written here on ``transformers.SamModel`` so that it runs on plain torch, CPU or CUDA, without
  torchvision (whose PyPI wheel does not load with a CPU torch).
- ``vlm_mask_scores``: CLIP/SigLIP-style image-text scores of each mask's crop against the
  scene's class names (``"a photo of a {class}."``), the layout of a mask folder's
  ``scores.npy``.

Models load from a local folder or a Hugging Face model name (downloaded into the Hub cache),
weights from safetensors only and never with remote code, so reading a model runs none of its
files. Needs the ``models`` extra: ``pip install -e ".[models]"``.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..params import Range
from ..scene import Scene

MAX_POINTS_PER_SIDE = 256  # 65,536 prompts per image, 64 times SAM's default grid of 32 x 32
POINTS_PER_SIDE = Range(1, MAX_POINTS_PER_SIDE, integer=True)
EXTRA = 'the "models" extra of pcweak (pip install -e ".[models]", which installs transformers)'


class ModelUnavailable(FileNotFoundError):
    """A model (``--sam``, ``--vlm``) that cannot be loaded: the same for every scene, so a
    folder of scenes stops at it rather than naming each scene."""


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise ImportError(f"SAM masks and VLM scores need {EXTRA}; or pass precomputed masks with --masks DIR ({e})") from e
    return transformers


@contextmanager
def _quiet() -> Iterator[None]:
    """transformers' notices while loading (e.g. that the torchvision image backend is
    missing and its PIL twin is used) are not the user's business."""
    tf = _transformers()
    level = tf.logging.get_verbosity()
    tf.logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tf.logging.set_verbosity(level)


def check_device(device: str, what: str = "device") -> None:
    """ValueError naming ``what`` unless ``device`` is a torch device this machine has (``cpu``,
    ``cuda``, ``cuda:1``, ``mps`` ...): checked before a model or a scene is read."""
    import torch
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"{what} {device}: not a torch device (cpu, cuda, cuda:N, mps): {e}") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {device}: this torch has no CUDA device (a CPU build, or no GPU here); use cpu")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(f"{what} {device}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 ...)")
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{what} {device}: MPS is not available here; use cpu")


def check_points_per_side(points_per_side: int, what: str = "points_per_side") -> None:
    """ValueError naming ``what`` unless 1 <= ``points_per_side`` <= ``MAX_POINTS_PER_SIDE``
    (the prompts per image grow with its square)."""
    if not POINTS_PER_SIDE.holds(points_per_side):
        raise ValueError(f"{what} must be {POINTS_PER_SIDE.text()} (its square is the prompts per "
                         f"image; SAM's default is 32), got {points_per_side!r}")


MODEL_ROLES = ("sam", "vlm")  # what check_model_source checks a model for: SAM's masks, image-text scores


def check_model_source(model: str | Path, what: str, role: str) -> None:
    """Before any work: the models extra is installed and ``model`` (a folder or a Hugging Face
    name) holds a readable model configuration (its config.json alone: no weights, no code) of
    a model that can play ``role`` (``MODEL_ROLES``); ModelUnavailable (a FileNotFoundError)
    naming ``what`` otherwise."""
    tf = _transformers()
    with _quiet():
        _check_role(_load(tf.AutoConfig, model, what, weights=False), model, what, role)


def _check_role(config: Any, model: str | Path, what: str, role: str) -> None:
    """ModelUnavailable naming ``what`` unless the transformers ``config`` is Segment Anything's
    (``role`` "sam") or has a text and a vision tower (``role`` "vlm": CLIP, SigLIP and their
    kin): another model's weights would load into SAM's layers with warnings, or fail later."""
    if role not in MODEL_ROLES:
        raise ValueError(f"check_model_source: role must be one of {MODEL_ROLES}, got {role!r}")
    kind = getattr(config, "model_type", "") or "unnamed"
    if role == "sam" and kind != "sam":
        raise ModelUnavailable(f"{what}: {model} is a {kind!r} model, not Segment Anything (model_type 'sam' in its "
                               f"config.json; SAM 2 and HQ-SAM are other architectures)")
    if role == "vlm" and not (hasattr(config, "text_config") and hasattr(config, "vision_config")):
        raise ModelUnavailable(f"{what}: {model} is a {kind!r} model, not an image-text model with a text and a vision "
                               f"tower (CLIP, SigLIP)")


_held: dict[tuple[Any, str, bool], Any] | None = None  # models_held's loaded models, while it is active


@contextmanager
def models_held() -> Iterator[None]:
    """Within it, each model (and its processor or tokenizer) is loaded once and reused by
    every call that names it (``pcweak masks`` of a folder of scenes); released on leaving."""
    global _held
    outer = _held
    _held = {} if outer is None else outer
    try:
        yield
    finally:
        _held = outer


def _load(cls: Any, model: str | Path, what: str, weights: bool = True) -> Any:
    key = (cls, str(model), weights)
    if _held is not None and key in _held:
        return _held[key]
    loaded = _load_now(cls, model, what, weights)
    if _held is not None:
        _held[key] = loaded
    return loaded


def _load_now(cls: Any, model: str | Path, what: str, weights: bool) -> Any:
    p = Path(model)
    if not p.exists() and (p.is_absolute() or str(model).startswith(".")):
        raise ModelUnavailable(f"{what}: model folder {p} not found")
    try:
        return cls.from_pretrained(str(model), trust_remote_code=False, **({"use_safetensors": True} if weights else {}))
    except Exception as e:  # no such model, no configuration, damaged safetensors, weights of another shape
        held = "with safetensors weights" if weights else "with a model configuration"
        said = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ModelUnavailable(f"{what}: cannot load {model!r} as a model folder or Hugging Face name "
                                f"{held} ({said})") from e


def box_nms(boxes: Any, scores: Any, iou: float) -> Any:
    """Indices (descending score) of the boxes greedy non-maximum suppression keeps.
    boxes (K,4) x0,y0,x1,y1 float tensor; scores (K,)."""
    import torch
    order = torch.argsort(scores, descending=True)
    b = boxes[order].float()
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    over = inter / (area[:, None] + area[None] - inter).clamp(min=1e-9) > iou
    keep = torch.ones(len(b), dtype=torch.bool)
    for i in range(len(b)):
        if keep[i]:
            keep[i + 1:] &= ~over[i, i + 1:]
    return order[keep]


def _mask_boxes(masks: Any) -> Any:
    """(K,4) x0,y0,x1,y1 of (K,H,W) bool masks (zeros for an empty mask)."""
    import torch
    K, H, W = masks.shape
    cols, rows = masks.any(1), masks.any(2)
    xs, ys = torch.arange(W), torch.arange(H)
    x0 = torch.where(cols, xs, W).min(1).values
    x1 = torch.where(cols, xs, -1).max(1).values
    y0 = torch.where(rows, ys, H).min(1).values
    y1 = torch.where(rows, ys, -1).max(1).values
    return torch.stack([x0, y0, x1 + 1, y1 + 1], 1).clamp(min=0).float()


def sam_masks(scene: Scene, model: str | Path, frames: Sequence[int] | None = None, **kwargs: Any) -> list[tuple[int, np.ndarray]]:
    """``iter_sam_masks`` collected in a list."""
    return list(iter_sam_masks(scene, model, frames, **kwargs))


def iter_sam_masks(scene: Scene, model: str | Path, frames: Sequence[int] | None = None, device: str = "cpu",
                   points_per_side: int = 32, points_per_batch: int = 16, pred_iou_thresh: float = 0.88,
                   stability_score_thresh: float = 0.95, stability_offset: float = 1.0, box_nms_thresh: float = 0.7,
                   min_area: int = 100, progress: bool = True) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, (H,W) int64 label map) for each frame with a colour image, one frame at a
    time as it is done: SAM's automatic masks (0 = no mask, 1..m), larger masks painted first
    so smaller ones stay on top.

    Args:
        model: a SAM model folder (``SamModel`` + its image processor config) or name, e.g.
            ``facebook/sam-vit-base``.
        points_per_side: the prompt grid is points_per_side^2 points over the image.
        points_per_batch: prompts decoded at once (memory: 3 full-size float masks each).
        pred_iou_thresh / stability_score_thresh: keep a mask whose predicted IoU, and whose
            area ratio between thresholds +-``stability_offset`` on its logits, pass these.
        box_nms_thresh: masks whose boxes overlap a better one by more than this IoU are dropped.
        min_area: masks of fewer pixels are dropped.
    """
    import torch
    from tqdm import tqdm
    check_device(device)
    check_points_per_side(points_per_side)
    tf = _transformers()
    wanted = list(range(len(scene.frames)) if frames is None else frames)
    todo = [i for i in wanted if scene.frames[i].image is not None]
    if not todo:
        if wanted:
            raise ValueError(f"scene {scene.name!r}: no frame has a colour image for SAM")
        return
    check_model_source(model, "--sam", "sam")
    with _quiet():
        net = _load(tf.SamModel, model, "--sam").to(device).eval()
        from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil
        proc = _load(SamImageProcessorPil, model, "--sam")
    for fi in tqdm(todo, desc="sam", unit="frame", disable=not progress):
        img = np.asarray(scene.frames[fi].image)
        H, W = img.shape[:2]
        inputs = proc(images=img, return_tensors="pt")
        rh, rw = (int(v) for v in inputs["reshaped_input_sizes"][0])
        g = (np.arange(points_per_side) + 0.5) / points_per_side
        grid = np.stack(np.meshgrid(g * W, g * H), -1).reshape(-1, 2) * np.array([rw / W, rh / H])
        kept_masks, kept_scores = [], []
        with torch.no_grad():
            emb = net.get_image_embeddings(inputs["pixel_values"].to(device))
            for s in range(0, len(grid), points_per_batch):
                pts = torch.as_tensor(grid[s:s + points_per_batch], dtype=torch.float32, device=device)
                res = net(image_embeddings=emb, input_points=pts[None, :, None, :],
                          input_labels=torch.ones(1, len(pts), 1, dtype=torch.long, device=device), multimask_output=True)
                logits = proc.post_process_masks(res.pred_masks.cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"],
                                                 binarize=False)[0].flatten(0, 1)  # (B*3, H, W)
                iou = res.iou_scores[0].flatten().cpu()
                stable = (logits > stability_offset).sum((1, 2)) / (logits > -stability_offset).sum((1, 2)).clamp(min=1)
                m = logits > 0
                ok = (iou > pred_iou_thresh) & (stable > stability_score_thresh) & (m.sum((1, 2)) >= min_area)
                kept_masks.append(m[ok])
                kept_scores.append(iou[ok])
        masks = torch.cat(kept_masks) if kept_masks else torch.zeros(0, H, W, dtype=torch.bool)
        scores = torch.cat(kept_scores) if kept_scores else torch.zeros(0)
        lm = np.zeros((H, W), np.int64)
        if len(masks):
            keep = box_nms(_mask_boxes(masks), scores, box_nms_thresh)
            masks = masks[keep]
            for j, k in enumerate(torch.argsort(masks.sum((1, 2)), descending=True).tolist(), 1):
                lm[masks[k].numpy()] = j
            ids = np.unique(lm[lm > 0])  # masks hidden under smaller ones are gone: renumber 1..m
            remap = np.zeros(int(lm.max()) + 1, np.int64)
            remap[ids] = np.arange(1, len(ids) + 1)
            lm = remap[lm]
        yield fi, lm


def _crop(img: np.ndarray, mask: np.ndarray, context: float) -> np.ndarray:
    """The mask's bounding box grown by ``context`` of its size on each side, pixels outside the
    mask set to mid grey (the model should score the object, not its surroundings)."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    dy, dx = int((y1 - y0) * context), int((x1 - x0) * context)
    y0, y1, x0, x1 = max(y0 - dy, 0), min(y1 + dy, img.shape[0]), max(x0 - dx, 0), min(x1 + dx, img.shape[1])
    crop = img[y0:y1, x0:x1].copy()
    crop[~mask[y0:y1, x0:x1]] = 127
    return crop


def vlm_mask_scores(scene: Scene, masks: Sequence[tuple[int, np.ndarray]], model: str | Path,
                    classes: Sequence[str] | None = None, template: str = "a photo of a {}.", context: float = 0.1,
                    batch: int = 32, device: str = "cpu", progress: bool = True) -> np.ndarray:
    """(total masks, C) float32 image-text logits (scaled cosine similarity) of every mask's crop
    against each class prompt, rows in frame order then mask id 1..m (rows of masks with no
    pixels, or in frames without a colour image, are 0).

    Args:
        model: a CLIP/SigLIP-style model folder or name (``get_image_features`` and
            ``get_text_features``, with its tokenizer and image processor), e.g.
            ``openai/clip-vit-base-patch32``.
        classes: names to score (default the scene's classes; ``_`` reads as a space).
        context: crop margin as a fraction of the mask's box.
    """
    import torch
    from tqdm import tqdm
    check_device(device)
    tf = _transformers()
    names = list(scene.classes if classes is None else classes)
    with _quiet():
        net = _load(tf.AutoModel, model, "--vlm").to(device).eval()
        tok = _load(tf.AutoTokenizer, model, "--vlm")
        imp = _load(tf.AutoImageProcessor, model, "--vlm")
    for attr in ("get_image_features", "get_text_features"):
        if not hasattr(net, attr):
            raise ValueError(f"--vlm: {model} ({type(net).__name__}) has no {attr}; give a CLIP/SigLIP-style image-text model")

    def features(out: Any) -> Any:
        f = out if torch.is_tensor(out) else out.pooler_output
        return torch.nn.functional.normalize(f.float(), dim=-1)
    with torch.no_grad():
        text = tok([template.format(c.replace("_", " ")) for c in names], padding="max_length" if "siglip" in type(net).__name__.lower()
                   else True, return_tensors="pt").to(device)
        tfeat = features(net.get_text_features(**text))
        scale = float(net.logit_scale.exp()) if hasattr(net, "logit_scale") else 1.0
    rows: list[np.ndarray] = []
    crops: list[np.ndarray] = []
    where: list[int] = []
    for fi, lm in masks:
        lm = np.asarray(lm)
        img = scene.frames[fi].image
        top = int(lm.max()) if lm.size else 0
        base = len(rows)
        rows.extend(np.zeros(len(names), np.float32) for _ in range(top))
        if img is None or not top:
            continue
        img = np.asarray(img)
        if img.shape[:2] != lm.shape:  # masks made at another resolution: nearest-neighbour to the image
            r = np.minimum((np.arange(img.shape[0]) * lm.shape[0] / img.shape[0]).astype(int), lm.shape[0] - 1)
            c = np.minimum((np.arange(img.shape[1]) * lm.shape[1] / img.shape[1]).astype(int), lm.shape[1] - 1)
            lm = lm[r][:, c]
        for mid in range(1, top + 1):
            m = lm == mid
            if m.any():
                crops.append(_crop(img, m, context))
                where.append(base + mid - 1)
    for s in tqdm(range(0, len(crops), batch), desc="vlm", unit="batch", disable=not progress):
        with torch.no_grad():
            px = imp(images=crops[s:s + batch], return_tensors="pt")["pixel_values"].to(device)
            logits = scale * features(net.get_image_features(pixel_values=px)) @ tfeat.T
        for j, row in zip(where[s:s + batch], logits.cpu().numpy()):
            rows[j] = row.astype(np.float32)
    return np.stack(rows) if rows else np.zeros((0, len(names)), np.float32)

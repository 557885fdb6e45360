"""``pcweak label`` jobs: read a scene and its weak labels, label, write the output atomically.
Lives above the readers and the labellers because it wires the two (a labeller never reads
files).

Each output records a fingerprint of what made it: the scene's identity (its address and the
size, modification time and, for single files, content hash of its source files), the weak
file's hash, the method, the full labeller config (and the hash of a proposal file it names,
the identity of a mask folder), the reader options (and the hash of a file one names), the
voxel of a subsampled labelling, pcweak's version and a hash of the source of the modules that
read, simulate and label (``code_stamp.LABELLER_MODULES``).
A resumed ``pcweak label`` skips an existing output only when its fingerprint equals the job's;
an output made from other inputs is labelled again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PcweakError
from .scene import PseudoLabels, WeakLabels

HASH_FILES_UP_TO = 1 << 30  # bytes: a larger source file is identified by size and time alone


@dataclass(frozen=True)
class LabelJob:
    """One scene of ``pcweak label``: read ``address`` and the ``weak`` file, label with
    ``method`` and ``params`` (at one point per ``voxel`` metres where given) and write
    ``output`` (atomically), stamped with ``fingerprint``."""
    name: str
    address: str
    weak: str
    output: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    reader: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = "{}"
    voxel: float | None = None


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def files_identity(files: list[Path]) -> dict[str, Any]:
    """Size and modification time of each of ``files`` hashed together, and the SHA-256 of the
    content when there is one file of up to ``HASH_FILES_UP_TO`` bytes."""
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    ident: dict[str, Any] = {"files": len(files), "stat_sha256": h.hexdigest()}
    if len(files) == 1 and files[0].stat().st_size <= HASH_FILES_UP_TO:
        ident["sha256"] = file_sha256(files[0])
    return ident


def scene_identity(address: str, exclude: str | os.PathLike | None = None) -> dict[str, Any]:
    """What identifies the scene an address reads: the address and ``files_identity`` of its
    source files. ``exclude``: an output (file or folder) that may lie among them, e.g. pseudo-
    labels written into a ScanNet scan's folder; it and its writer's temporary files are left
    out, so writing it does not change the scene's identity."""
    from .data.address import source_files
    files = source_files(address)
    if exclude is not None:
        ex = Path(exclude).resolve()
        temporaries = {t.resolve() for t in temporaries_of(ex)}
        files = [f for f in files if not (f.resolve() == ex or ex in f.resolve().parents or f.resolve() in temporaries)]
    return {"address": address, **files_identity(files)}


def reader_identity(reader: dict[str, Any]) -> dict[str, Any]:
    """A job's reader options for its fingerprint: ``reader`` as text, and where an option names a
    file (``--axis-align FILE``) that file's SHA-256 under ``reader_sha256``, since it stands for
    its content."""
    out: dict[str, Any] = {"reader": {k: str(v) for k, v in sorted(reader.items())}}
    files = {k: file_sha256(v) for k, v in sorted(reader.items()) if isinstance(v, (str, os.PathLike)) and Path(v).is_file()}
    if files:
        out["reader_sha256"] = files
    return out


def job_fingerprint(address: str, weak: str | dict[str, Any], method: str, params: dict[str, Any],
                    reader: dict[str, Any], output: str | os.PathLike | None = None, voxel: float | None = None) -> str:
    """The JSON fingerprint of one labelling job (see the module docstring). ``weak``: the weak
    labels' file, or for labels simulated on the fly what draws them (kind, count, seed);
    ``output``: where the job writes, left out of the scene's files (``scene_identity``);
    ``voxel``: the subsampling's voxel (metres), absent from the fingerprint when None."""
    from .code_stamp import LABELLER_MODULES, made_by
    from .pseudo.registry import check_params
    config = dataclasses.asdict(check_params(method, params))
    fp = {"scene": scene_identity(address, output), "method": method, "params": config, **reader_identity(reader),
          **made_by(LABELLER_MODULES)}
    if voxel is not None:
        fp["voxel"] = voxel
    if isinstance(weak, dict):
        fp["weak_simulated"] = weak
    else:
        fp["weak_sha256"] = file_sha256(weak)
    masks = config.get("masks")
    if masks and Path(masks).is_dir():
        fp["masks"] = files_identity(sorted(f for f in Path(masks).rglob("*") if f.is_file()))
    groups = config.get("groups")
    if groups and Path(groups).is_file():
        fp["groups_sha256"] = file_sha256(groups)
    return json.dumps(fp, sort_keys=True)


def is_current(output: str | os.PathLike, fingerprint: str) -> bool:
    """True when ``output`` is a readable PseudoLabels file made by a job with ``fingerprint``."""
    from .errors import PcweakError
    try:
        return PseudoLabels.load(output).fingerprint == fingerprint
    except PcweakError:
        return False  # a damaged earlier output is redone


def temporaries_of(output: str | os.PathLike) -> list[Path]:
    """The temporary files of writers of ``output`` now beside it (``npzio.atomic_write_bytes``
    names them ``.<name>.<random>.tmp``)."""
    out = Path(output)
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


def remove_stale_temporaries(output: str | os.PathLike) -> int:
    """Delete the temporary files that a killed writer of ``output`` left next to it
    (``temporaries_of``); returns how many."""
    n = 0
    for f in temporaries_of(output):
        try:
            f.unlink()
            n += 1
        except OSError:
            pass
    return n


def _warn_beyond_reach(job: LabelJob, points: int, scan_lines: bool, need: float) -> None:
    """Warn, naming the scene and the figures, when labelling it needs more memory than this
    process can count on (``parallel.memory_within_reach_gb``): the kernel may kill the run
    part way, without a word of its own."""
    from .parallel import memory_within_reach_gb
    reach = memory_within_reach_gb()
    if reach is None or need <= reach * 2**30:
        return
    from .pseudo.registry import get_labeller
    if job.voxel is not None:
        split = "a larger --voxel"
    elif get_labeller(job.method).voxel_ok:
        split = "--voxel 0.05 labels one point per 5 cm voxel and carries the labels back to every point"
        if job.address.lower().endswith((".las", ".laz")):
            split += "; or pdal split --length 100 IN.laz OUT.laz cuts a tile into squares 100 of its units wide"
    else:
        split = "label it in parts"
    warnings.warn(f"scene {job.name!r}: {job.method} on its {points:,} {'points' if job.voxel is None else f'voxels of {job.voxel:g} m'}{' (along scan lines)' if scan_lines else ''} "
                  f"needs about {need / 2**30:.1f} GiB, more than the {reach:.1f} GiB within reach; the kernel may stop the "
                  f"run part way: {split}", stacklevel=2)


def run_label_job(job: LabelJob) -> str:
    """Do ``job`` (in this process or a worker of ``parallel.process_map``); returns its name.
    Once the scene is read, the labelling waits for its share of the workers' memory budget
    (the labeller's ``memory_bytes`` for the scene's points, and whether they lie along scan
    lines; ``parallel.memory_held``); a scene that needs more than that budget, or than the
    memory available to a single process, is warned of before it starts. With ``job.voxel`` the
    scene is subsampled first (``voxel_subsample``) and budgeted by its voxels, plus what
    subsampling and carrying back hold for its points (``voxel_subsample.carry_bytes``)."""
    from .data.address import load_scene
    from .parallel import memory_held
    from .pseudo.registry import get_labeller, label, label_subsampled, subsample_for
    from .pseudo.voxel_subsample import carry_bytes
    from .segment.descriptors import along_scan_lines
    scene = load_scene(job.address, **job.reader)
    weak = WeakLabels.load(job.weak)
    labeller = get_labeller(job.method)
    sub = None if job.voxel is None else subsample_for(labeller, scene, weak, job.voxel)
    labelled = scene if sub is None else sub.scene
    scan_lines = labeller.scan_line_bytes_per_point is not None and along_scan_lines(labelled.coord)
    need = labeller.memory_bytes(labelled.num_points, scan_lines) + (0 if sub is None else carry_bytes(scene.num_points))
    _warn_beyond_reach(job, labelled.num_points, scan_lines, need)
    with memory_held(need):
        out = label(scene, weak, job.method, **job.params) if sub is None else label_subsampled(sub, job.method, **job.params)
    out.fingerprint = job.fingerprint
    out.save(job.output)
    return job.name


# what one scene's own files or weak labels can raise: in a folder, that scene is reported at the
# end and the others are labelled (an error of pcweak's own code still stops the job)
SCENE_ERRORS = (PcweakError, ValueError, OSError)


def label_job_outcome(job: LabelJob) -> tuple[str, str | None]:
    """``run_label_job`` for one scene of a folder: ``(name, None)`` when its output is written,
    ``(name, message)`` when its scene or weak file is refused (``SCENE_ERRORS``)."""
    try:
        return run_label_job(job), None
    except SCENE_ERRORS as e:
        return job.name, str(e) or type(e).__name__


def learn_geometry(pairs: list[tuple[str, str]], reader: dict[str, Any], progress: Any = None,
                   image_boxes: bool = False) -> tuple[dict[str, Any], int, str]:
    """The ``BoxGeometry`` (its ``to_dict`` form) that the weak files of ``pairs`` (scene address,
    weak file) teach, how many frames taught it, and from what: the fully boxed frames (those
    whose weak file holds boxes: ``object_boxes.learn_box_geometry``), ``"boxes"``; where there is
    none and ``image_boxes``, the image boxes of every frame
    (``frustum_boxes.learn_sizes_from_image_boxes``), ``"image boxes"``."""
    from .data.address import load_scene
    from .pseudo.object_boxes import learn_box_geometry
    weak = [(address, WeakLabels.load(wfile)) for address, wfile in pairs]
    boxed = [(a, w) for a, w in weak if w.box is not None and len(w.box)]
    if not boxed and image_boxes:
        from .pseudo.frustum_boxes import learn_sizes_from_image_boxes
        chosen = [(a, w) for a, w in weak if w.box2d is not None and len(w.box2d)]
    else:
        chosen = boxed

    def frames():
        for address, w in chosen:
            scene = load_scene(address, **reader)
            w.check_against(scene)
            yield scene, w
            if progress is not None:
                progress(address)

    if chosen is boxed:
        return learn_box_geometry(list(frames())).to_dict(), len(chosen), "boxes"
    return learn_sizes_from_image_boxes(frames()).to_dict(), len(chosen), "image boxes"

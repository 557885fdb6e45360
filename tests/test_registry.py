"""The labeller registry: one entry (``pcweak.label``), each labeller's config checked before any
work, and every output reproducible from the ``params`` it records."""
from __future__ import annotations

import inspect
import json
from dataclasses import replace

import numpy as np
import pytest

import pcweak
from pcweak import weak
from pcweak.cli import main
from pcweak.errors import SceneError
from pcweak.npzio import npz_bytes
from pcweak.pseudo.registry import LABELLERS, check_params, get_labeller


def _weak_for(method, room, lidar):
    if method in ("propagate", "nearest"):
        return room, weak.clicks(room, seed=0)
    if method in ("gp-boxes", "smallest-box"):
        return room, weak.boxes(room, seed=0)
    if method == "lift-masks":
        w = weak.points(room, count=20, seed=0)
        m = weak.masks2d(room, seed=0)
        return room, replace(w, mask2d=m.mask2d, mask2d_frame=m.mask2d_frame)
    if method == "click-boxes":
        return lidar, weak.clicks(lidar, seed=0)
    if method == "cluster-boxes":
        return lidar, weak.clusters(lidar)
    return lidar, weak.boxes2d(lidar, use_annotated=False)


SETTINGS = {"propagate": {"graph.sigma_color": 0.12, "solver": {"alpha": 0.85}}, "nearest": {"k_vote": 3},
            "gp-boxes": {"iterations": 15, "lr": 0.05}, "smallest-box": {"margin": 0.03},
            "lift-masks": {"min_points": 15, "propagate_params": {"graph.k": 8}}, "boxes2d-frustum": {"shrink": 0.08},
            "click-boxes": {"link_radius": 0.8, "geometry": {"sizes": {"Car": [4.0, 1.7, 1.5]}, "counts": {"Car": 3}}},
            "cluster-boxes": {"trim": 0.02}}


def test_every_registered_labeller_is_covered():
    get_labeller("propagate")
    assert set(LABELLERS) == set(SETTINGS)
    for lab in LABELLERS.values():
        assert lab.consumes and lab.fills and lab.summary


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_a_labeller_rerun_from_its_saved_params_gives_the_same_file(method, room, lidar, tmp_path):
    scene, w = _weak_for(method, room, lidar)
    first = pcweak.label(scene, w, method, **SETTINGS[method])
    path = first.save(tmp_path / "first.npz")
    saved = pcweak.PseudoLabels.load(path)
    params = json.loads(saved.params)
    # the full config, every default included, not only what was set
    assert set(params) == {n.split(".")[0] for n in get_labeller(method).make_config(None).__dataclass_fields__}
    again = pcweak.label(scene, w, method, **params)
    assert npz_bytes(again.to_arrays()) == path.read_bytes()
    # a changed setting is recorded (and so would be told apart from the defaults' file)
    import dataclasses
    assert params != dataclasses.asdict(get_labeller(method).make_config(None))


def test_propagate_is_an_explicit_array_api():
    sig = inspect.signature(pcweak.propagate)
    assert len(sig.parameters) <= 12
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values())


def test_propagate_config_defaults_live_once():
    """The stage dataclasses hold every default; ``affinity_graph`` takes the graph stage's."""
    from pcweak.pseudo.propagate import GraphConfig, PropagateConfig, affinity_graph, propagate_config
    assert inspect.signature(affinity_graph).parameters["config"].default == GraphConfig()
    cfg = propagate_config({"graph": {"k": 8}, "solver.name": "harmonic"})
    assert cfg.graph.k == 8 and cfg.solver.name == "harmonic" and cfg.partition == PropagateConfig().partition


def test_a_missing_weak_field_names_the_field(room):
    with pytest.raises(SceneError, match=r"--method gp-boxes: the weak labels have no box"):
        pcweak.label(room, weak.points(room, count=5, seed=0), "gp-boxes")
    with pytest.raises(SceneError, match=r"--method lift-masks: the weak labels have no mask2d \(or --param masks=...\)"):
        pcweak.label(room, weak.points(room, count=5, seed=0), "lift-masks")
    with pytest.raises(ValueError, match=r"--method 'nope': expected one of boxes2d-frustum, click-boxes, cluster-boxes, gp-boxes"):
        check_params("nope", {})


def test_label_names_what_it_takes_when_given_something_else(room):
    """An address or a file name where a Scene or WeakLabels belongs: one TypeError saying what
    to pass (it was an AttributeError from deep inside, naming neither)."""
    w = weak.points(room, count=5, seed=0)
    with pytest.raises(TypeError, match="expected a Scene and WeakLabels .*got str and WeakLabels"):
        pcweak.label("synthetic:0", w)
    with pytest.raises(TypeError, match="got Scene and NoneType"):
        pcweak.label(room, None, "nearest")
    # the other entries of the Python API alike
    with pytest.raises(TypeError, match=r"simulate\(scene, kind\): expected a Scene \(pcweak.load_scene\(address\)\), got str"):
        pcweak.simulate("synthetic:0", "points", count=5)
    pseudo = pcweak.label(room, w, "nearest")
    with pytest.raises(TypeError, match=r"evaluate\(scene, pseudo\): expected a Scene and PseudoLabels .*got Scene and WeakLabels"):
        pcweak.evaluate(room, w)
    with pytest.raises(TypeError, match="got str and PseudoLabels"):
        pcweak.evaluate("synthetic:0", pseudo)
    with pytest.raises(TypeError, match="got Scene and ndarray"):
        pcweak.evaluate(room, pseudo.semantic)
    with pytest.raises(ValueError, match="evaluate: min_region_size must be an integer >= 0, got -5"):
        pcweak.evaluate(room, pseudo, min_region_size=-5)  # taken as no size limit before


def test_cli_nested_param_spelling(tmp_path, room, capsys):
    s = tmp_path / "room.npz"
    room.save(s)
    w = tmp_path / "w.npz"
    weak.points(room, count=40, seed=0).save(w)
    out = tmp_path / "p.npz"
    assert main(["label", f"npz:{s}", "--weak", str(w), "-o", str(out), "--param", "graph.sigma_color=0.2",
                 "--param", "solver.name=harmonic"]) == 0
    p = json.loads(pcweak.PseudoLabels.load(out).params)
    assert p["graph"]["sigma_color"] == 0.2 and p["solver"]["name"] == "harmonic" and p["graph"]["k"] == 10
    assert np.array_equal(pcweak.PseudoLabels.load(out).semantic,
                          pcweak.label(room, pcweak.WeakLabels.load(w), **{"graph.sigma_color": 0.2, "solver.name": "harmonic"}).semantic)


def test_a_scene_not_in_metres_is_named(room):
    """Every size and radius is in metres: a room in millimetres or centimetres read as metres
    labelled 0.84 / 0.86 mIoU against 0.92 (docs/results.md) without a word."""
    import warnings
    w = weak.points(room, count=50, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pcweak.label(room, w, "nearest")
    for scale in (100.0, 1000.0):
        mm = replace(room, coord=room.coord * scale, frames=[], boxes=None, box_labels=None)
        with pytest.warns(UserWarning, match=r"scene '.*': its points lie a median \d+(\.\d+)? m from their nearest "
                                             r"neighbours, where scans in metres lie 1-4 cm apart: pcweak reads "
                                             r"coordinates in metres \(from millimetres divide them by 1000"):
            pcweak.label(mm, w, "nearest")

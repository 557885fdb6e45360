"""E57 scans (``e57:FILE``, pye57): several stations moved by their poses into one cloud,
invalid returns left out, colours and intensity by their limits, and the errors a damaged file
gets."""
import json

import numpy as np
import pytest

import pcweak
from pcweak.data.e57 import read_e57
from pcweak.errors import ReaderError

pye57 = pytest.importorskip("pye57", reason="the e57 extra (pye57) is not installed")


def _quaternion_z(angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])  # w, x, y, z


def _write(path, stations):
    """An E57 file of ``stations``: (local points (M,3), rgb (M,3) uint8 or None, intensity (M,)
    or None, invalid (M,) bool, yaw, translation (3,)) each."""
    e57 = pye57.E57(str(path), mode="w")
    for k, (xyz, rgb, inten, invalid, yaw, t) in enumerate(stations):
        data = {"cartesianX": xyz[:, 0], "cartesianY": xyz[:, 1], "cartesianZ": xyz[:, 2],
                "cartesianInvalidState": invalid.astype(np.int8)}
        if rgb is not None:
            data.update(colorRed=rgb[:, 0], colorGreen=rgb[:, 1], colorBlue=rgb[:, 2])
        if inten is not None:
            data["intensity"] = inten
        e57.write_scan_raw(data, name=f"station {k}", rotation=_quaternion_z(yaw), translation=np.asarray(t, np.float64))
    e57.close()
    return path


def test_the_stations_of_an_e57_file_read_as_one_cloud(tmp_path):
    rng = np.random.default_rng(0)
    stations, want = [], []
    for k, (yaw, t) in enumerate(((0.0, (0.0, 0.0, 0.0)), (np.pi / 2, (4.0, 1.0, 0.5)))):
        xyz = rng.random((120, 3)) * [6, 5, 3]
        rgb = rng.integers(0, 256, (120, 3)).astype(np.uint8)
        rgb[0] = 255
        inten = rng.random(120).astype(np.float32)
        invalid = np.arange(120) % 10 == k  # no return: left out
        stations.append((xyz, rgb, inten, invalid, yaw, t))
        c, s = np.cos(yaw), np.sin(yaw)
        world = xyz @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + t
        want.append((world[~invalid], rgb[~invalid], inten[~invalid], inten))
    scene = pcweak.load_scene(str(_write(tmp_path / "room.e57", stations)))
    assert scene.name == "room" and scene.num_points == 216 and scene.semantic is None
    assert scene.meta["e57_scans"] == [["station 0", 108], ["station 1", 108]]
    np.testing.assert_allclose(scene.coord, np.concatenate([w[0] for w in want]), atol=1e-5)
    np.testing.assert_allclose(scene.color, np.concatenate([w[1] for w in want]) / 255.0, atol=1e-6)
    # each station's intensity by its own limits (pye57 writes the least and largest of all its points)
    for k, (_, _, kept, every) in enumerate(want):
        np.testing.assert_allclose(scene.intensity[108 * k: 108 * (k + 1)], (kept - every.min()) / (every.max() - every.min()),
                                   atol=1e-5)


def test_e57_without_colour_and_its_errors(tmp_path, monkeypatch):
    xyz = np.random.default_rng(1).random((40, 3))
    s = read_e57(_write(tmp_path / "plain.e57", [(xyz, None, None, np.zeros(40, bool), 0.0, (0, 0, 0))]))
    assert s.color is None and s.intensity is None and s.num_points == 40
    raw = (tmp_path / "plain.e57").read_bytes()
    (tmp_path / "cut.e57").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ReaderError, match=r"cut.e57: not a readable E57 file"):
        read_e57(tmp_path / "cut.e57")
    (tmp_path / "text.e57").write_text("not an e57 file\n")
    with pytest.raises(ReaderError, match=r"text.e57: not a readable E57 file"):
        read_e57(tmp_path / "text.e57")
    with pytest.raises(ReaderError, match=r"nowhere.e57: file not found"):
        pcweak.load_scene(str(tmp_path / "nowhere.e57"))
    e57 = pye57.E57(str(tmp_path / "pose.e57"), mode="w")
    e57.write_scan_raw({"cartesianX": xyz[:, 0], "cartesianY": xyz[:, 1], "cartesianZ": xyz[:, 2]}, name="north",
                       rotation=np.zeros(4))  # every point was put at the origin
    e57.close()
    with pytest.raises(ReaderError, match=r"pose.e57: scan 'north': its pose's rotation \[0.0, 0.0, 0.0, 0.0\] is no rotation"):
        read_e57(tmp_path / "pose.e57")
    import sys
    monkeypatch.setitem(sys.modules, "pye57", None)
    with pytest.raises(ReaderError, match=r'plain.e57: reading E57 files needs the "e57" extra of pcweak'):
        read_e57(tmp_path / "plain.e57")


def test_an_e57_scan_labelled_from_the_cli(tmp_path, room, capsys):
    """A room's points as an E57 scan in two stations: clicked points drawn on the E57 scene,
    labelled and exported as the user would, without ground truth to score."""
    from pcweak import weak
    from pcweak.cli import main
    half = room.num_points // 2
    rgb = np.round(room.color * 255).astype(np.uint8)
    stations = [(room.coord[:half].astype(np.float64), rgb[:half], None, np.zeros(half, bool), 0.0, (0, 0, 0)),
                (room.coord[half:].astype(np.float64), rgb[half:], None, np.zeros(room.num_points - half, bool), 0.0, (0, 0, 0))]
    path = _write(tmp_path / "scan.e57", stations)
    assert main(["info", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["points"] == room.num_points
    # weak labels made on the room fit the scan: same points, same order
    labelled = pcweak.Scene(name="scan", coord=room.coord, classes=room.classes, semantic=room.semantic)
    weak.points(labelled, count=60, seed=0).save(tmp_path / "w.npz")
    assert main(["label", str(path), "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "p.npz")]) == 0
    p = np.load(tmp_path / "p.npz")
    assert len(p["semantic"]) == room.num_points and (p["semantic"] >= 0).mean() > 0.9
    assert np.mean(p["semantic"] == room.semantic) > 0.6
    assert main(["viz", str(path), "--pseudo", str(tmp_path / "p.npz"), "--export", str(tmp_path / "out.ply")]) == 0

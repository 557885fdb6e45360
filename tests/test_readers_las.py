"""LAS / LAZ scans (``las:FILE``, laspy): the fields as LAS files carry them, georeferenced
coordinates, class names from the Classification Lookup record, and the errors a cut or foreign
file gets."""
import json
import sys

import numpy as np
import pytest

import pcweak
from pcweak.data.las import read_las
from pcweak.errors import ReaderError

laspy = pytest.importorskip("laspy", reason="the las extra (laspy) is not installed")

UTM = np.array([500000.0, 4600000.0, 120.0])


def _write(path, coord, point_format=7, offsets=(0.0, 0.0, 0.0), **fields):
    """A LAS/LAZ file (by the suffix) at millimetre scale; ``fields``: standard dimensions by name,
    an ``extra`` dict of extra-bytes dimensions, ``lookup`` a Classification Lookup dict."""
    h = laspy.LasHeader(point_format=point_format, version="1.4")
    h.offsets, h.scales = np.asarray(offsets, np.float64), np.full(3, 0.001)
    extra = fields.pop("extra", {})
    for name, values in extra.items():
        h.add_extra_dim(laspy.ExtraBytesParams(name=name, type=np.asarray(values).dtype))
    lookup = fields.pop("lookup", None)
    if lookup:
        from laspy.vlrs.known import ClassificationLookupVlr
        vlr = ClassificationLookupVlr()
        for k, name in lookup.items():
            vlr[k] = name
        h.vlrs.append(vlr)
    las = laspy.LasData(h)
    las.x, las.y, las.z = coord[:, 0], coord[:, 1], coord[:, 2]
    for name, values in {**fields, **extra}.items():
        las[name] = values
    las.write(str(path))
    return path


def test_las_fields_as_a_georeferenced_laz_carries_them(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    local = np.round(rng.random((n, 3)) * [30, 20, 5], 3)
    rgb8 = rng.integers(0, 256, (n, 3))
    rgb8[0] = 255
    cls = rng.choice([2, 5, 6], n)
    ins = np.where(cls == 6, rng.integers(0, 3, n), -1).astype(np.int32)
    path = _write(tmp_path / "tile.laz", local + UTM, offsets=UTM.round(-3), red=rgb8[:, 0].astype(np.uint16),
                  green=rgb8[:, 1].astype(np.uint16), blue=rgb8[:, 2].astype(np.uint16),
                  intensity=(np.arange(n) * 300).astype(np.uint16), classification=cls.astype(np.uint8),
                  extra={"Instance": ins}, lookup={2: "ground", 5: "high vegetation", 6: "building"})
    with pytest.warns(UserWarning, match=r"shifted by \[-500000.0, -4600000.0, 0.0\] m"):
        s = pcweak.load_scene(str(path))
    assert s.name == "tile" and s.meta["dataset"] == "las" and s.meta["coord_shift"] == [500000.0, 4600000.0, 0.0]
    np.testing.assert_allclose(s.coord, local + [0, 0, 120], atol=2e-5)  # millimetres kept, not 0.5 m steps
    np.testing.assert_allclose(s.color, rgb8 / 255.0, atol=1e-6)  # 8-bit values in LAS's 16-bit fields
    np.testing.assert_allclose(s.intensity, np.arange(n) * 300 / 65535.0, atol=1e-6)
    assert s.semantic.tolist() == cls.tolist() and s.instance.tolist() == ins.tolist()
    assert s.classes == ("class_0", "class_1", "ground", "class_3", "class_4", "high vegetation", "building")

    # full 16-bit colour, and an extra-bytes label dimension over the classification
    lab = rng.integers(-1, 4, n).astype(np.int16)
    s16 = read_las(_write(tmp_path / "b.las", local, red=(rgb8[:, 0] * 257).astype(np.uint16),
                          green=(rgb8[:, 1] * 257).astype(np.uint16), blue=(rgb8[:, 2] * 257).astype(np.uint16),
                          classification=cls.astype(np.uint8), extra={"label": lab}))
    np.testing.assert_allclose(s16.color, rgb8 / 255.0, atol=1e-6)
    assert s16.semantic.tolist() == lab.tolist() and s16.classes == ("class_0", "class_1", "class_2", "class_3")
    assert "coord_shift" not in s16.meta


def test_las_without_labels_or_colour(tmp_path):
    """A raw scan: every point 'never classified' (0) or 'unclassified' (1) reads as unlabelled;
    a point format without colour, or its colour fields left at zero, as no colour."""
    xyz = np.random.default_rng(1).random((50, 3)) * 10
    for value in (0, 1):
        s = read_las(_write(tmp_path / f"raw{value}.las", xyz, point_format=1,
                            classification=np.full(50, value, np.uint8)))
        assert s.semantic is None and s.classes == () and s.color is None
    s = read_las(_write(tmp_path / "black.las", xyz, point_format=3, classification=np.repeat([0, 1], 25).astype(np.uint8)))
    assert s.color is None and s.semantic.tolist() == [0] * 25 + [1] * 25  # 0 and 1 together: the file's classes
    assert np.all(s.intensity == 0)


def test_las_errors_name_the_file(tmp_path, monkeypatch):
    xyz = np.random.default_rng(2).random((100, 3))
    path = _write(tmp_path / "t.las", xyz, point_format=3)
    raw = path.read_bytes()
    size = laspy.read(str(path)).header.point_format.size
    (tmp_path / "whole.las").write_bytes(raw[: -3 * size])  # three whole records short: laspy reads 97 points
    with pytest.raises(ReaderError, match=r"whole.las: holds 97 of the 100 points its header counts \(a truncated file\?\)"):
        read_las(tmp_path / "whole.las")
    (tmp_path / "cut.las").write_bytes(raw[:-7])
    with pytest.raises(ReaderError, match=r"cut.las: not a readable LAS/LAZ file"):
        read_las(tmp_path / "cut.las")
    (tmp_path / "cut.laz").write_bytes(_write(tmp_path / "t.laz", xyz).read_bytes()[:-20])
    with pytest.raises(ReaderError, match=r"cut.laz: not a readable LAS/LAZ file"):
        read_las(tmp_path / "cut.laz")
    (tmp_path / "text.las").write_text("x y z\n0 0 0\n")
    with pytest.raises(ReaderError, match=r"text.las: not a readable LAS/LAZ file"):
        read_las(tmp_path / "text.las")
    with pytest.raises(ReaderError, match=r"empty.las: no points"):
        read_las(_write(tmp_path / "empty.las", np.zeros((0, 3))))
    with pytest.raises(ReaderError, match=r"nowhere.laz: file not found"):
        pcweak.load_scene(str(tmp_path / "nowhere.laz"))
    import struct  # the header's x, y, z scale factors are three doubles at byte 131, the offsets at 155
    for name, at, values, needle in (("zero.las", 131, (0.001, 0.0, 0.001), r"zero.las: the header's y scale factor is 0.0"),
                                     ("mirror.las", 131, (-0.001,) * 3, r"mirror.las: the header's x scale factor is -0.001"),
                                     ("nan.las", 155, (0.0, 0.0, float("nan")), r"nan.las: the header's z offset is nan")):
        (tmp_path / name).write_bytes(raw[:at] + struct.pack("<3d", *values) + raw[at + 24:])
        with pytest.raises(ReaderError, match=needle):  # every point at one place, mirrored, or NaN
            read_las(tmp_path / name)
    for unit, needle in (("-0.3048", "-0.3048"), ("0", "0.0"), ("nan", "nan"), ("1e-300", "1e-300")):
        with pytest.raises(ReaderError, match=rf"u.las: its coordinate reference system gives x / y the unit 'foot' of "
                                              rf"{needle} metres, not a length"):  # mirrored, kept, NaN, collapsed before
            read_las(_crs_tile(tmp_path / "u.las", xyz, wkt=f'PROJCS["x",UNIT["foot",{unit}]]'))
    deep = read_las(_crs_tile(tmp_path / "deep.las", xyz, wkt="A[" * 5000 + "]" * 5000))  # RecursionError, no file, before
    assert "las_units_m" not in deep.meta and deep.num_points == 100
    # more records than the header counts (a count not updated, two files joined): laspy read 60 of 100
    for version, at in (("1.2", (107,)), ("1.4", (107, 247))):  # the legacy count, and 1.4's 64-bit one
        h = laspy.LasHeader(point_format=3 if version == "1.2" else 6, version=version)
        las = laspy.LasData(h)
        las.x, las.y, las.z = xyz.T
        las.write(str(tmp_path / "full.las"))
        full = bytearray((tmp_path / "full.las").read_bytes())
        for i in at:
            struct.pack_into("<I" if i == 107 else "<Q", full, i, 60)
        (tmp_path / "counts60.las").write_bytes(bytes(full))
        with pytest.raises(ReaderError, match=r"counts60.las: holds 40 more point records after the 60 its header counts"):
            read_las(tmp_path / "counts60.las")
    (tmp_path / "padded.las").write_bytes(raw + b"\0" * (size - 1))  # less than a record after the body: padding
    assert read_las(tmp_path / "padded.las").num_points == 100
    from laspy.vlrs.vlrlist import VLRList
    h = laspy.read(str(path))
    h.evlrs = VLRList([laspy.VLR("pcweak", 1, "after the points", b"x" * 3 * size)])  # extended records after them pass
    h.write(str(tmp_path / "evlr.las"))
    assert laspy.read(str(tmp_path / "evlr.las")).header.number_of_evlrs == 1
    assert read_las(tmp_path / "evlr.las").num_points == 100
    monkeypatch.setitem(sys.modules, "laspy", None)  # the extra not installed
    with pytest.raises(ReaderError, match=r't.las: reading LAS/LAZ files needs the "las" extra of pcweak'):
        read_las(path)


def test_a_folder_of_las_tiles_labelled_and_scored_from_the_cli(tmp_path, lidar, capsys):
    """`pcweak info / simulate / label / evaluate` on LAS and LAZ tiles (suffixes in any case), one
    of them in UTM: its pseudo-labels are those of the same tile at the origin."""
    from pcweak.cli import main
    folder = tmp_path / "tiles"
    folder.mkdir()
    coord = np.round(lidar.coord.astype(np.float64), 3)
    fields = dict(intensity=np.round(lidar.intensity * 65535).astype(np.uint16), extra={"label": lidar.semantic.astype(np.int16)})
    _write(folder / "near.LAZ", coord, point_format=1, **fields)
    _write(folder / "far.las", coord + UTM, point_format=1, offsets=UTM, **fields)
    assert main(["info", str(folder)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["address"] for s in listed["list"]] == [f"las:{folder / 'far.las'}", f"las:{folder / 'near.LAZ'}"]
    out = {}
    for name, file in (("near", "near.LAZ"), ("far", "far.las")):
        assert main(["simulate", str(folder / file), "--weak", "points", "--count", "200", "--seed", "0",
                     "-o", str(tmp_path / f"w_{name}.npz")]) == 0
        assert main(["label", str(folder / file), "--weak", str(tmp_path / f"w_{name}.npz"), "-o",
                     str(tmp_path / f"p_{name}.npz")]) == 0
        capsys.readouterr()
        assert main(["evaluate", str(folder / file), "--pseudo", str(tmp_path / f"p_{name}.npz"), "--json"]) == 0
        out[name] = json.loads(capsys.readouterr().out)
        out[name]["semantic"] = np.load(tmp_path / f"p_{name}.npz")["semantic"]
    assert np.mean(out["near"]["semantic"] == out["far"]["semantic"]) > 0.99
    assert abs(out["near"]["miou"] - out["far"]["miou"]) < 0.01 and out["near"]["miou"] > 0.5


def test_write_las_round_trip_and_pseudo_labels_as_classification(tmp_path, room):
    """``write_las`` (``viz --export out.laz``) keeps every field ``read_las`` reads back: points to
    the millimetre, colour, labels, instances, superpoints and class names; the pseudo-labels
    fill ``classification`` for GIS tools, and a file without ground truth reads them back as
    its labels, unlabelled points as -1."""
    from pcweak.data.las import write_las
    for name in ("r.las", "r.LAZ"):
        back = read_las(write_las(room, tmp_path / name))
        np.testing.assert_allclose(back.coord, room.coord, atol=5.1e-4)
        np.testing.assert_allclose(back.color, room.color, atol=1 / 65535)
        for f in ("semantic", "instance", "segment"):
            assert np.array_equal(getattr(back, f), getattr(room, f)), (name, f)
        assert back.classes == room.classes
    with pytest.warns(UserWarning, match="shifted by"):
        far = pcweak.Scene(name="far", coord=room.coord.astype(np.float64) + UTM, classes=room.classes, semantic=room.semantic)
    pseudo = np.where(np.arange(room.num_points) % 7 == 0, -1, room.semantic)
    path = write_las(far, tmp_path / "far.laz", {"pseudo_label": pseudo, "confidence": np.full(room.num_points, 0.5)},
                     classify_by="pseudo_label")
    las = laspy.read(str(path))
    assert np.asarray(las.x).min() > 4e5  # the file's own coordinates
    codes = np.asarray(las.classification)
    assert np.array_equal(codes, np.where(pseudo < 0, len(room.classes), pseudo))
    assert np.asarray(las["pseudo_label"]).tolist() == pseudo.tolist() and np.allclose(las["confidence"], 0.5)
    with pytest.warns(UserWarning, match="shifted by"):
        again = read_las(path)
    assert again.meta["coord_shift"] == far.meta["coord_shift"] and np.allclose(again.coord, far.coord, atol=5.1e-4)
    assert again.semantic.tolist() == room.semantic.tolist()  # the ground truth's own dimension wins
    bare = pcweak.Scene(name="bare", coord=room.coord, classes=room.classes)
    got = read_las(write_las(bare, tmp_path / "bare.las", {"pseudo_label": pseudo}, classify_by="pseudo_label"))
    assert got.semantic.tolist() == pseudo.tolist() and got.classes == room.classes
    with pytest.raises(ValueError, match=r"classify_by='pseudo': not one of the fields"):
        write_las(bare, tmp_path / "x.las", {"pseudo_label": pseudo}, classify_by="pseudo")
    # a field named as a dimension the file already has, or too long for the record, is refused
    # before anything is written (laspy took a second "Intensity" without a word)
    for field, needle in (("Intensity", "a standard LAS one"), ("label", "from the scene"), ("x" * 33, "1 to 32 bytes")):
        with pytest.raises(ValueError, match=f"write_las field '{field}'.*{needle}"):
            write_las(room, tmp_path / "clash.las", {field: pseudo})
    assert not (tmp_path / "clash.las").exists()
    odd = pcweak.Scene(name="odd", coord=room.coord, classes=("wall", "table, low") + room.classes[2:], semantic=room.semantic)
    assert read_las(write_las(odd, tmp_path / "odd.las")).classes == odd.classes  # a comma inside a name


def test_viz_exports_las_from_the_cli(tmp_path, room, capsys):
    from pcweak import weak
    from pcweak.cli import main
    room.save(tmp_path / "room.npz")
    weak.points(room, count=40, seed=0).save(tmp_path / "w.npz")
    assert main(["label", str(tmp_path / "room.npz"), "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "p.npz")]) == 0
    assert main(["viz", str(tmp_path / "room.npz"), "--pseudo", str(tmp_path / "p.npz"), "--export", str(tmp_path / "o.laz")]) == 0
    assert "classification from pseudo_label" in capsys.readouterr().out
    las = laspy.read(str(tmp_path / "o.laz"))
    p = np.load(tmp_path / "p.npz")
    assert np.array_equal(np.asarray(las["pseudo_label"]), p["semantic"])
    assert np.array_equal(np.asarray(las.classification), np.where(p["semantic"] < 0, len(room.classes), p["semantic"]))
    assert main(["viz", str(tmp_path / "room.npz"), "--export", str(tmp_path / "o.xyz")]) == 2
    err = capsys.readouterr().err
    assert "--export " in err and "must end in .ply, .las, .laz" in err


def test_an_export_keeps_the_tiles_coordinate_reference_system(tmp_path):
    """A tile's CRS records (OGC WKT here) go to ``meta['las_crs']``, through a saved scene, and
    into the LAS file ``write_las`` makes of it: a GIS places the pseudo-labels where the scan lies."""
    from laspy.vlrs.known import WktCoordinateSystemVlr

    from pcweak.data.las import write_las
    wkt = 'PROJCS["WGS 84 / UTM zone 17N",GEOGCS["WGS 84"],AUTHORITY["EPSG","32617"]]'
    h = laspy.LasHeader(point_format=6, version="1.4")
    h.vlrs.append(WktCoordinateSystemVlr(wkt))
    h.global_encoding.wkt = True
    las = laspy.LasData(h)
    las.x, las.y, las.z = np.arange(10.0) + 600000, np.arange(10.0) + 4800000, np.arange(10.0)
    las.write(str(tmp_path / "crs.las"))
    with pytest.warns(UserWarning, match="shifted by"):
        s = read_las(tmp_path / "crs.las")
    assert [r["record_id"] for r in s.meta["las_crs"]] == [2112]
    s.save(tmp_path / "s.npz")
    out = laspy.read(str(write_las(pcweak.Scene.load(tmp_path / "s.npz"), tmp_path / "out.laz")))
    got = [v for v in out.header.vlrs if v.user_id == "LASF_Projection"]
    assert len(got) == 1 and got[0].record_id == 2112 and got[0].string.rstrip("\0") == wkt and out.header.global_encoding.wkt
    np.testing.assert_allclose(out.x, las.x)


FT_US = 1200 / 3937  # metres per US survey foot
STATE_PLANE_FT = ('PROJCS["NAD83 / Pennsylvania South (ftUS)",GEOGCS["NAD83",DATUM["North_American_Datum_1983",'
                  'SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
                  'PROJECTION["Lambert_Conformal_Conic_2SP"],UNIT["US survey foot",0.304800609601219,AUTHORITY["EPSG","9003"]],'
                  'AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","2272"]]')


def _crs_tile(path, coord, wkt=None, geokeys=None):
    from laspy.vlrs.known import GeoKeyDirectoryVlr, WktCoordinateSystemVlr
    h = laspy.LasHeader(point_format=6 if wkt else 1, version="1.4" if wkt else "1.2")
    h.offsets, h.scales = np.floor(coord.min(0)), np.full(3, 0.001)
    if wkt:
        h.vlrs.append(WktCoordinateSystemVlr(wkt))
        h.global_encoding.wkt = True
    if geokeys:
        raw = np.array([1, 1, 0, len(geokeys)] + [v for k, val in geokeys.items() for v in (k, 0, 1, val)], "<u2").tobytes()
        vlr = GeoKeyDirectoryVlr()
        vlr.parse_record_data(raw)
        h.vlrs.append(vlr)
    las = laspy.LasData(h)
    las.x, las.y, las.z = coord.T
    las.write(str(path))
    return path


@pytest.mark.filterwarnings("ignore:.*to keep millimetres in float32")
def test_a_tile_in_feet_is_read_in_metres_and_written_back_in_feet(tmp_path):
    """A US state plane tile in survey feet (its WKT says so) was read as metres: every distance
    3.28 times too long. Its points now come in metres, and an export gives the file's feet
    back; GeoTIFF keys say the same for older files, and longitude / latitude is refused."""
    from pcweak.data.crs_units import crs_units, wkt_units
    from pcweak.data.las import write_las
    rng = np.random.default_rng(3)
    feet = np.round(rng.random((300, 3)) * [300, 200, 40] + [2_600_000, 230_000, 500], 3)
    with pytest.warns(UserWarning, match=r"coordinates in US survey foot \(x, y\) and US survey foot \(z\) .* read as metres"):
        s = read_las(_crs_tile(tmp_path / "ft.las", feet, wkt=STATE_PLANE_FT))
    assert s.meta["las_units_m"] == pytest.approx([FT_US] * 3) and s.meta["crs"] == "NAD83 / Pennsylvania South (ftUS)"
    shown = s.summary()["meta"]["las_crs"][0]["data"]  # pcweak info: the record's base64 cut to its length
    assert shown.endswith(" characters)") and len(shown) < 80
    metres = s.coord.astype(np.float64) + s.meta.get("coord_shift", 0.0)
    np.testing.assert_allclose(metres, feet * FT_US, atol=1e-3)
    out = laspy.read(str(write_las(s, tmp_path / "out.laz")))
    np.testing.assert_allclose(np.stack([out.x, out.y, out.z], 1), feet, atol=2e-3)
    # GeoTIFF keys: projected in international feet (9002), no vertical unit: z takes x / y's
    with pytest.warns(UserWarning, match=r"in foot \(x, y\) and foot \(z\)"):
        g = read_las(_crs_tile(tmp_path / "keys.las", feet, geokeys={1024: 1, 3072: 2272, 3076: 9002}))
    assert g.meta["las_units_m"] == [0.3048] * 3 and g.meta["crs"] == "EPSG:2272"
    # metres say nothing; a compound CRS with a vertical unit of its own scales z alone
    assert "las_units_m" not in read_las(_crs_tile(tmp_path / "m.las", feet / 10, geokeys={1024: 1, 3076: 9001})).meta
    compound = wkt_units('COMPD_CS["x",PROJCS["UTM",GEOGCS["WGS 84",UNIT["degree",0.0174]],UNIT["metre",1]],'
                         'VERT_CS["NAVD88 height (ftUS)",VERT_DATUM["NAVD88",2005],UNIT["US survey foot",0.304800609601219]]]')
    assert (compound.horizontal_m, compound.vertical_m) == (1.0, pytest.approx(FT_US)) and crs_units([]).horizontal_m is None
    lonlat = np.column_stack([-77 + rng.random(50) * 0.01, 40 + rng.random(50) * 0.01, rng.random(50) * 30])
    with pytest.raises(ReaderError, match=r"ll.las: x / y are longitude / latitude in degrees .* reproject the file"):
        read_las(_crs_tile(tmp_path / "ll.las", lonlat, geokeys={1024: 2}))

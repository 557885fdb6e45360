"""The linear units of a LAS file's coordinate reference system, from its ``LASF_Projection``
records (OGC WKT, record 2112, or GeoTIFF keys, record 34735): coordinates in feet are read as
metres, and longitude / latitude in degrees are refused, since every distance pcweak uses
(neighbourhoods, spacings, box sizes) is in metres."""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

WKT_RECORD_ID = 2112  # OGC WKT, which LAS 1.4's point formats 6-10 must use
GEOKEYS_RECORD_ID = 34735  # the GeoTIFF key directory
# GeoTIFF keys: the model type (2: geographic), the projected and the vertical linear unit
MODEL_TYPE_KEY, PROJ_LINEAR_UNITS_KEY, VERTICAL_UNITS_KEY = 1024, 3076, 4099
MODEL_GEOGRAPHIC = 2
PROJECTED_CRS_KEY, GEOGRAPHIC_CRS_KEY, USER_DEFINED = 3072, 2048, 32767  # their EPSG codes; 32767: none
# EPSG unit codes -> (name, metres per unit)
EPSG_UNITS: dict[int, tuple[str, float]] = {9001: ("metre", 1.0), 9002: ("foot", 0.3048), 9003: ("US survey foot", 1200 / 3937),
                                           9005: ("Clarke's foot", 0.3047972654), 9036: ("kilometre", 1000.0)}
PROJECTED = ("PROJCS", "PROJCRS", "PROJECTEDCRS")
VERTICAL = ("VERT_CS", "VERTCRS", "VERTICALCRS")
GEOGRAPHIC = ("GEOGCS", "GEOGCRS", "GEOGRAPHICCRS", "GEODCRS", "GEODETICCRS", "BASEGEOGCRS", "BASEGEODCRS")
LENGTH_UNITS = ("UNIT", "LENGTHUNIT")


@dataclass(frozen=True)
class CrsUnits:
    """What a file's CRS records say of its coordinates: metres per horizontal and per vertical
    unit (None where they do not say) with the units' names, whether x / y are longitude /
    latitude degrees, and the CRS's name (the WKT's, or ``EPSG:<code>`` from GeoTIFF keys)."""
    horizontal_m: float | None = None
    vertical_m: float | None = None
    horizontal_name: str = ""
    vertical_name: str = ""
    geographic: bool = False
    name: str = ""


def _wkt_tree(text: str) -> Any:
    """[KEYWORD, [children]] of an OGC WKT string (WKT 1 or 2); quoted names and numbers are
    leaves."""
    tokens = re.findall(r'"(?:[^"]|"")*"|[\[\]\(\),]|[^\[\]\(\),"\s]+', text)
    pos = 0

    def node() -> Any:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if pos < len(tokens) and tokens[pos] in "[(":
            pos += 1
            kids = []
            while pos < len(tokens) and tokens[pos] not in "])":
                if tokens[pos] == ",":
                    pos += 1
                    continue
                kids.append(node())
            pos += 1
            return [tok.upper(), kids]
        return tok[1:-1].replace('""', '"') if tok.startswith('"') else tok

    return node() if tokens else None


def _find(tree: Any, names: tuple[str, ...], skip: tuple[str, ...] = ()) -> Any:
    """The first node named one of ``names``, depth first, not looking inside ``skip`` nodes."""
    if not isinstance(tree, list):
        return None
    if tree[0] in names:
        return tree
    if tree[0] in skip:
        return None
    for kid in tree[1]:
        found = _find(kid, names, skip)
        if found is not None:
            return found
    return None


def _length_unit(node: Any) -> tuple[str, float] | tuple[None, None]:
    """(name, metres) of the first length unit inside ``node``, a geographic base CRS's (the
    ellipsoid's) left out."""
    unit = _find([node[0], node[1]], LENGTH_UNITS, skip=GEOGRAPHIC) if node is not None else None
    if unit is None or len(unit[1]) < 2:
        return None, None
    try:
        return str(unit[1][0]), float(unit[1][1])
    except (TypeError, ValueError):
        return None, None


def wkt_units(text: str) -> CrsUnits:
    """The units an OGC WKT coordinate reference system gives x / y and z."""
    try:
        tree = _wkt_tree(text)
    except (IndexError, RecursionError):  # an unbalanced string, or nested deeper than any CRS: says nothing
        return CrsUnits()
    proj, vert = _find(tree, PROJECTED), _find(tree, VERTICAL)
    hname, h = _length_unit(proj)
    vname, v = _length_unit(vert)
    geographic = proj is None and _find(tree, GEOGRAPHIC) is not None
    name = tree[1][0] if isinstance(tree, list) and tree[1] and isinstance(tree[1][0], str) else ""
    return CrsUnits(h, v, hname or "", vname or "", geographic, name)


def geokey_units(data: bytes) -> CrsUnits:
    """The units a GeoTIFF key directory gives x / y and z (keys 3076 and 4099; EPSG codes of
    ``EPSG_UNITS``), and whether its model is geographic (key 1024)."""
    a = np.frombuffer(data[: len(data) // 2 * 2], "<u2")
    if len(a) < 4:
        return CrsUnits()
    keys = a[4: 4 + 4 * int(a[3])]
    keys = keys[: len(keys) // 4 * 4].reshape(-1, 4)
    direct = {int(k[0]): int(k[3]) for k in keys if k[1] == 0}  # location 0: the value is in the key itself
    hname, h = EPSG_UNITS.get(direct.get(PROJ_LINEAR_UNITS_KEY, -1), ("", None))
    vname, v = EPSG_UNITS.get(direct.get(VERTICAL_UNITS_KEY, -1), ("", None))
    code = direct.get(PROJECTED_CRS_KEY) or direct.get(GEOGRAPHIC_CRS_KEY)
    name = f"EPSG:{code}" if code and code != USER_DEFINED else ""
    return CrsUnits(h, v, hname, vname, direct.get(MODEL_TYPE_KEY) == MODEL_GEOGRAPHIC, name)


def crs_units(records: list[dict[str, Any]]) -> CrsUnits:
    """The units of a LAS file's CRS records as ``las.read_las`` keeps them (``meta['las_crs']``:
    record_id and base64 data each); the WKT record where there is one, else the GeoTIFF keys."""
    by_id = {int(r["record_id"]): base64.b64decode(str(r["data"])) for r in records}
    if WKT_RECORD_ID in by_id:
        return wkt_units(by_id[WKT_RECORD_ID].split(b"\0", 1)[0].decode("utf-8", "replace"))
    if GEOKEYS_RECORD_ID in by_id:
        return geokey_units(by_id[GEOKEYS_RECORD_ID])
    return CrsUnits()

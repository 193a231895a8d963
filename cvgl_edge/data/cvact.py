"""CVACT, as distributed (Liu & Li, CVPR 2019).

Layout::

    ROOT/ACT_data.mat        panoIds (N ids), utm (N x 2 easting/northing),
                             trainSet.trainInd, valSet.valInd (1-based indices into panoIds),
                             optionally testSet.testInd
    ROOT/ANU_data_small/streetview/{id}_grdView.jpg
    ROOT/ANU_data_small/satview_polish/{id}_satView_polish.jpg      (train and val)
    ROOT/ANU_data_test/streetview/...  ROOT/ANU_data_test/satview_polish/...   (test)

The test split uses ``testSet`` from the same .mat when present, otherwise every
id that has both images in ANU_data_test.  UTM coordinates are converted to
lat/lon assuming zone 55 south (Canberra, where CVACT was collected).

``scipy.io.loadmat`` wraps MATLAB structs and cells in several layers of 1x1
object / record arrays depending on how the file was written; the helpers
below unwrap them by field name instead of relying on one nesting shape.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge.data.georef import utm_to_latlon
from cvgl_edge.data.pairs import PairIndex, check_pairs_exist, require_dir, require_file
from cvgl_edge.errors import CvglError
from cvgl_edge.extras import needs

MAT_NAME = "ACT_data.mat"
LAYOUT = MAT_NAME


def looks_like_cvact(root: Path) -> bool:
    """True when ``root`` holds CVACT's index file."""
    return (root / MAT_NAME).is_file()
UTM_ZONE, UTM_SOUTH = 55, True
_FOLDERS = {"train": "ANU_data_small", "val": "ANU_data_small", "test": "ANU_data_test"}
_SETS = {"train": ("trainSet", "trainInd"), "val": ("valSet", "valInd"), "test": ("testSet", "testInd")}
GROUND_SUFFIX = "_grdView"
SATELLITE_SUFFIX = "_satView_polish"


def _unwrap(x: Any) -> Any:
    """Strip 1-element object arrays (MATLAB cells / struct fields) down to their content."""
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.reshape(-1)[0]
    return x


def _fields(obj: Any) -> dict[str, Any]:
    """Field name -> value of a loaded MATLAB struct (record array, np.void, mat_struct or dict)."""
    obj = _unwrap(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, np.ndarray) and obj.dtype.names:
        rec = obj.reshape(-1)[0] if obj.size else None
        return {} if rec is None else {n: _unwrap(rec[n]) for n in obj.dtype.names}
    if isinstance(obj, np.void) and obj.dtype.names:
        return {n: _unwrap(obj[n]) for n in obj.dtype.names}
    names = getattr(obj, "_fieldnames", None)
    if names:
        return {n: _unwrap(getattr(obj, n)) for n in names}
    return {}


def _index_array(value: Any, what: str, mat_path: Path) -> np.ndarray:
    arr = np.asarray(_unwrap(value))
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise CvglError(f"malformed {mat_path}: {what} is not a numeric index list")
    return arr.reshape(-1)


def split_indices(mat: dict[str, Any], set_name: str, field: str, mat_path: Path) -> np.ndarray:
    """0-based indices of a split from ``mat[set_name].field`` (1-based in the file).

    Accepts the struct by field name, a struct whose index field is named
    differently (first field ending in 'Ind', else the last numeric field), or a
    plain index array saved under ``set_name``.
    """
    raw = mat[set_name]
    fields = _fields(raw)
    if not fields:
        values = _index_array(raw, set_name, mat_path)
    elif field in fields:
        values = _index_array(fields[field], f"{set_name}.{field}", mat_path)
    else:
        named = [k for k in fields if k.lower().endswith("ind")]
        numeric = [k for k, v in fields.items() if isinstance(v, np.ndarray) and v.dtype != object
                   and np.issubdtype(v.dtype, np.number) and v.size > 1]
        pick = named[0] if named else (numeric[-1] if numeric else None)
        if pick is None:
            raise CvglError(f"malformed {mat_path}: {set_name} has no index field (fields: {', '.join(fields)})")
        values = _index_array(fields[pick], f"{set_name}.{pick}", mat_path)
    if values.size and (np.any(values != np.round(values)) or values.min() < 1):
        raise CvglError(f"malformed {mat_path}: {set_name} indices must be 1-based integers")
    return values.astype(np.int64) - 1


def pano_ids(mat: dict[str, Any], mat_path: Path) -> list[str]:
    """panoIds as a list of str (char matrix, cell array or string array)."""
    if "panoIds" not in mat:
        raise CvglError(f"malformed {mat_path}: no 'panoIds' variable")
    raw = np.asarray(mat["panoIds"])
    ids: list[str] = []
    if raw.dtype.kind == "U" and raw.ndim == 2 and raw.dtype.itemsize == 4 and raw.shape[1] > 1:
        # chars_as_strings=False style char matrix: one id per row.
        return ["".join(r).strip() for r in raw]
    for item in raw.reshape(-1):
        item = _unwrap(item)
        if isinstance(item, np.ndarray):
            item = "".join(str(c) for c in item.reshape(-1))
        ids.append(str(item).strip())
    return ids


def read_act_mat(mat_path: Path) -> dict[str, Any]:
    """Load ACT_data.mat with SciPy, turning format errors into one-line CvglErrors. SciPy comes with
    the ``train`` extra; the deployment install (no SciPy) says so in one line."""
    require_file(mat_path, "CVACT index file")
    try:
        import scipy.io  # a training-side dependency: the deployment install has none
    except ImportError:
        raise CvglError(needs(f"reading CVACT's {mat_path.name}", "SciPy")) from None
    try:
        return scipy.io.loadmat(str(mat_path))
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5) files
        raise CvglError(f"unsupported .mat version (v7.3/HDF5; re-save with -v7): {mat_path}") from exc
    except (ValueError, TypeError, OSError, EOFError) as exc:
        raise CvglError(f"malformed .mat file {mat_path}: {exc}") from exc


def _latlon_from_utm(mat: dict[str, Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    utm = mat.get("utm")
    if utm is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    utm = np.asarray(utm, dtype=np.float64)
    if utm.ndim != 2 or 2 not in utm.shape:
        return np.full(n, np.nan), np.full(n, np.nan)
    if utm.shape[1] != 2:
        utm = utm.T
    if utm.shape[0] != n:
        return np.full(n, np.nan), np.full(n, np.nan)
    lat, lon = utm_to_latlon(utm[:, 0], utm[:, 1], UTM_ZONE, UTM_SOUTH)
    return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


def _image_paths(folder: Path, stems: list[str]) -> list[Path]:
    """``folder/stem.jpg``, or ``.png`` where only that exists (some re-distributions convert)."""
    names = {e.name for e in os.scandir(folder)}
    return [folder / (f"{s}.png" if f"{s}.jpg" not in names and f"{s}.png" in names else f"{s}.jpg")
            for s in stems]


def _listed_test_ids(base: Path) -> list[str]:
    grd = {p.name[: -len(GROUND_SUFFIX) - 4] for p in (base / "streetview").iterdir()
           if p.name.endswith(GROUND_SUFFIX + p.suffix) and p.suffix in (".jpg", ".png")}
    sat = {p.name[: -len(SATELLITE_SUFFIX) - 4] for p in (base / "satview_polish").iterdir()
           if p.name.endswith(SATELLITE_SUFFIX + p.suffix) and p.suffix in (".jpg", ".png")}
    return sorted(grd & sat)


def load_cvact(root: str | Path, split: str, skip_missing: bool = False) -> PairIndex:
    """Pairs of a CVACT split ("train", "val" or "test"), checking that every listed image exists."""
    root = Path(root)
    if split not in _FOLDERS:
        raise CvglError(f"CVACT has no {split!r} split (valid: {', '.join(_FOLDERS)})")
    require_dir(root, "CVACT dataset")
    mat_path = root / MAT_NAME
    base = root / _FOLDERS[split]
    require_dir(base, "CVACT image")
    require_dir(base / "streetview", "CVACT street-view")
    require_dir(base / "satview_polish", "CVACT satellite")
    mat = read_act_mat(mat_path)
    all_ids = pano_ids(mat, mat_path)
    lat_all, lon_all = _latlon_from_utm(mat, len(all_ids))
    set_name, field = _SETS[split]
    if set_name in mat:
        idx = split_indices(mat, set_name, field, mat_path)
        if idx.size and idx.max() >= len(all_ids):
            raise CvglError(f"malformed {mat_path}: {set_name} index {int(idx.max()) + 1} exceeds "
                            f"the {len(all_ids)} panoIds")
        ids = [all_ids[i] for i in idx]
        lat, lon = lat_all[idx], lon_all[idx]
    elif split == "test":
        ids = _listed_test_ids(base)
        pos = {pid: k for k, pid in enumerate(all_ids)}
        where = np.array([pos.get(i, -1) for i in ids], dtype=np.int64)
        lat = np.where(where >= 0, lat_all[np.maximum(where, 0)] if len(all_ids) else np.nan, np.nan)
        lon = np.where(where >= 0, lon_all[np.maximum(where, 0)] if len(all_ids) else np.nan, np.nan)
    else:
        raise CvglError(f"malformed {mat_path}: no '{set_name}' variable")
    ground = _image_paths(base / "streetview", [f"{i}{GROUND_SUFFIX}" for i in ids])
    sat = _image_paths(base / "satview_polish", [f"{i}{SATELLITE_SUFFIX}" for i in ids])
    index = PairIndex("CVACT", split, ground, sat, ids, np.asarray(lat, np.float64), np.asarray(lon, np.float64))
    return check_pairs_exist(index, skip_missing)

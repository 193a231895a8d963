"""Tiny CVUSA, CVACT, University-1652 and VIGOR trees in exactly the public layouts.

For the loader, protocol and command tests (tests/data/, tests/eval/, tests/cli/, tests/package/).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_img(path: Path, h: int, w: int, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value % 256, np.uint8)
    img[: h // 2, : w // 3] = 255 - value % 256
    assert cv2.imwrite(str(path), img)
    return path


def write_flat_img(path: Path, h: int, w: int, value: int) -> Path:
    """One colour everywhere (CVACT's fabricated images)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))
    return path


# CVUSA: ROOT/{bingmap/19,streetview/panos}/<id>.jpg and ROOT/splits/{train,val}-19zl.csv
def make_cvusa(root, n_train=4, n_val=3, aerial=(40, 40), pano=(20, 80)):
    lines = {"train": [], "val": []}
    for split, n, offset in (("train", n_train, 1), ("val", n_val, 100)):
        for k in range(n):
            name = f"{offset + k:07d}"
            write_img(root / "bingmap" / "19" / f"{name}.jpg", *aerial, 10 + 20 * k)
            write_img(root / "streetview" / "panos" / f"{name}.jpg", *pano, 30 + 20 * k)
            lines[split].append(f"bingmap/19/{name}.jpg,streetview/panos/{name}.jpg,"
                                f"streetview/annotations/{name}.png")
    (root / "splits").mkdir(parents=True, exist_ok=True)
    (root / "splits" / "train-19zl.csv").write_text("\n".join(lines["train"]) + "\n")
    (root / "splits" / "val-19zl.csv").write_text("\n".join(lines["val"]) + "\n")
    return root


# CVACT: ROOT/ANU_data_{small,test}/{streetview,satview_polish}/ and the release's ACT_data.mat
CVACT_IDS = [f"__-DFIFxvZBCn{k:04d}qkqXA" for k in range(8)]     # 22 characters, like the release
CVACT_TRAIN, CVACT_VAL = [1, 2, 3, 5, 7], [4, 6, 8]                # 1-based, as MATLAB stores them


def make_cvact(root, cell_ids=False, with_test_set=False, plain_index=False, sat_side=48):
    import scipy.io  # SciPy comes with the train extra; the other trees need none of it

    ids = CVACT_IDS
    for k, pid in enumerate(ids):
        write_flat_img(root / "ANU_data_small/streetview" / f"{pid}_grdView.jpg", 24, 48, 20 + 10 * k)
        write_flat_img(root / "ANU_data_small/satview_polish" / f"{pid}_satView_polish.jpg", sat_side, sat_side,
                       25 + 10 * k)
    for pid in ids[:3]:
        write_flat_img(root / "ANU_data_test/streetview" / f"{pid}_grdView.jpg", 24, 48, 90)
        write_flat_img(root / "ANU_data_test/satview_polish" / f"{pid}_satView_polish.jpg", sat_side, sat_side, 95)
    utm = np.stack([693_000.0 + 10 * np.arange(len(ids)), 6_091_000.0 + 5 * np.arange(len(ids))], axis=1)
    # Index lists are integer column vectors in the release (public loaders index numpy arrays
    # with them directly); a double-typed copy is accepted too, so valSet uses doubles here.
    col = lambda v: np.asarray(v, dtype=np.int32).reshape(-1, 1)  # noqa: E731
    dcol = lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1)  # noqa: E731
    mat = {
        "panoIds": np.array(ids, dtype=object).reshape(-1, 1) if cell_ids else np.array(ids),
        "utm": utm,
        "trainSet": (col(CVACT_TRAIN) if plain_index
                     else {"trainNum": float(len(CVACT_TRAIN)), "trainInd": col(CVACT_TRAIN)}),
        "valSet": {"valNum": float(len(CVACT_VAL)), "valInd": dcol(CVACT_VAL)},
    }
    if with_test_set:
        mat["testSet"] = {"testNum": 2.0, "testInd": col([2, 3])}
    scipy.io.savemat(str(root / "ACT_data.mat"), mat)
    return root


# University-1652: 4 train classes; test: 3 query classes, 2 distractor satellite classes, 1 distractor drone class
U1652_TRAIN = ["0001", "0002", "0003", "0004"]
U1652_QUERY = ["0101", "0102", "0103"]
U1652_SAT_DISTRACTORS = ["0201", "0202"]
U1652_DRONE_DISTRACTORS = ["0301"]


def make_university1652(root: Path, drones_per_class: int = 3, size: int = 32) -> Path:
    """ROOT/train/{satellite,drone,street,google}/<class>/..., ROOT/test/{query_*,gallery_*}/<class>/..."""
    for k, c in enumerate(U1652_TRAIN):
        write_img(root / "train" / "satellite" / c / f"{c}.jpg", size, size, 20 + 40 * k)
        for j in range(drones_per_class):
            write_img(root / "train" / "drone" / c / f"image-{j + 1:02d}.jpeg", size, size, 30 + 40 * k + 5 * j)
        write_img(root / "train" / "street" / c / "street.jpg", size, 2 * size, 7 * k)
        (root / "train" / "google" / c).mkdir(parents=True)
    for k, c in enumerate(U1652_QUERY + U1652_SAT_DISTRACTORS):
        write_img(root / "test" / "gallery_satellite" / c / f"{c}.jpg", size, size, 60 + 30 * k)
    for k, c in enumerate(U1652_QUERY):
        write_img(root / "test" / "query_satellite" / c / f"{c}.jpg", size, size, 60 + 30 * k)
        for j in range(2):
            write_img(root / "test" / "query_drone" / c / f"image-{j + 1:02d}.jpeg", size, size, 70 + 30 * k + j)
    for k, c in enumerate(U1652_QUERY + U1652_DRONE_DISTRACTORS):
        for j in range(2):
            write_img(root / "test" / "gallery_drone" / c / f"image-{j + 1:02d}.jpeg", size, size, 75 + 30 * k + j)
    (root / "test" / "query_street").mkdir(parents=True)
    (root / "test" / "gallery_street").mkdir(parents=True)
    return root


# VIGOR: per city 4 tiles in a row (lat step 0.001), 2 train + 2 test panoramas; semi-positives are the other tiles
VIGOR_CITIES = {"Chicago": (41.88, -87.63), "NewYork": (40.71, -74.0), "SanFrancisco": (37.77, -122.42),
                "Seattle": (47.6, -122.33)}


def vigor_tiles(city: str) -> list[str]:
    lat, lon = VIGOR_CITIES[city]
    return [f"satellite_{lat + 0.001 * t:.6f}_{lon:.6f}.png" for t in range(4)]


def vigor_panos(city: str) -> list[str]:
    lat, lon = VIGOR_CITIES[city]
    return [f"{city[:2]}pano{p}xyz,{lat + 0.001 * p:.6f},{lon:.6f},.jpg" for p in range(4)]


def vigor_line(city: str, p: int) -> str:
    """Panorama p: positive tile p, semi-positives the other three tiles (with made-up offsets)."""
    tiles = vigor_tiles(city)
    order = [p] + [t for t in range(4) if t != p]
    return " ".join([vigor_panos(city)[p]] + [f"{tiles[t]} {1.5 * t:.1f} {-2.0 * t:.1f}" for t in order])


def make_vigor(root: Path, cities=tuple(VIGOR_CITIES), moved: bool = False) -> Path:
    """ROOT/<City>/{panorama,satellite}/ (or ROOT/{ground,satellite}/<City>/ with moved) and ROOT/splits/<City>/."""
    for c, city in enumerate(cities):
        pano_dir = root / "ground" / city if moved else root / city / "panorama"
        sat_dir = root / "satellite" / city if moved else root / city / "satellite"
        for t, name in enumerate(vigor_tiles(city)):
            write_img(sat_dir / name, 32, 32, 10 + 50 * c + 10 * t)
        for p, name in enumerate(vigor_panos(city)):
            write_img(pano_dir / name, 16, 64, 15 + 50 * c + 10 * p)
        split = root / "splits" / city
        split.mkdir(parents=True, exist_ok=True)
        (split / "satellite_list.txt").write_text("\n".join(vigor_tiles(city)) + "\n")
        lines = [vigor_line(city, p) for p in range(4)]
        (split / "same_area_balanced_train.txt").write_text("\n".join(lines[:2]) + "\n")
        (split / "same_area_balanced_test.txt").write_text("\n".join(lines[2:]) + "\n")
        (split / "pano_label_balanced.txt").write_text("\n".join(lines) + "\n")
    return root

"""Tile index: FAISS descriptors of every map tile plus their positions, in one checked file.

File layout (one ``.npz``, written atomically; no pickles):

    faiss    uint8   the serialised FAISS index (IndexFlatIP, or IVF-PQ with ``kind='ivfpq'``)
    rows, cols, lat, lon, bounds   per-tile arrays (see :class:`cvgl_edge.data.tiles.TilePlan`)
    meta     uint8   UTF-8 JSON: model (name, sha256, descriptor size, input size), tiling, map, kind,
                     and ``checksum``: sha256 over every other array, so a truncated or edited file is
                     refused instead of silently localising against garbage.

Build is resumable: descriptors are computed in chunks of tiles, each written atomically
to ``OUT.parts/PLAN/`` where PLAN is a hash of the build's plan (map sha256, tiling, model,
chunk size), also written there as ``plan.json``; running the same build again skips the
chunks already there. Why a folder per plan: chunks of one plan must never be loaded by
another, and a build with another map, tiling or model must not delete an interrupted
build's work either (it is kept and reported; that build resumes when run again).
One build at a time per ``OUT``: a second is refused while ``OUT.lock`` is held
(:func:`cvgl_edge.locks.hold_output`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

import cvgl_edge
from cvgl_edge import checks
from cvgl_edge.data.aerial import AerialPreprocess
from cvgl_edge.data.geomap import GeoMap, read_map
from cvgl_edge.data.tiles import TilePlan, cut_tile, plan_tiles
from cvgl_edge.descriptors import check_finite
from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.locks import hold_output
from cvgl_edge.progress import make_progress

FORMAT = "cvgl-edge-tile-index"
FORMAT_VERSION = 1
KINDS = ("flat", "ivfpq")
_ARRAYS = ("faiss", "rows", "cols", "lat", "lon", "bounds")


@dataclass
class TileIndex:
    """A loaded (or just built) tile index."""

    faiss_index: Any
    tiles: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path | None = None
    _descriptors: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def descriptor_dim(self) -> int:
        return int(self.meta["descriptor_dim"])

    @property
    def origin(self) -> tuple[float, float]:
        """Lat/lon of the local metric frame's origin (the map centre)."""
        lat, lon = self.meta["origin"]
        return float(lat), float(lon)

    @property
    def preprocess(self) -> AerialPreprocess:
        return AerialPreprocess(tuple(self.meta["input_size"]))

    def descriptors(self) -> np.ndarray | None:
        """(N, D) float32 descriptors of a flat index (None for compressed kinds)."""
        if self.meta["kind"] != "flat":
            return None
        if self._descriptors is None:
            import faiss

            flat = faiss.rev_swig_ptr(self.faiss_index.get_xb(), len(self) * self.descriptor_dim)
            self._descriptors = np.asarray(flat, np.float32).reshape(len(self), self.descriptor_dim)
        return self._descriptors

    def check_encoder(self, info: Any) -> None:
        """Refuse an encoder whose model differs from the one the index was built with."""
        name = self.meta.get("model_name")
        want, got = self.meta.get("model_sha256"), getattr(info, "model_sha256", None)
        where = f"index {self.path}" if self.path else "the index"
        if int(info.descriptor_dim) != self.descriptor_dim:
            raise CvglError(f"{where} holds {self.descriptor_dim}-d descriptors of {name}, the encoder gives "
                            f"{info.descriptor_dim}-d: rebuild the index with this model")
        if want and got and want != got:
            raise CvglError(f"{where} was built with another model ({name} {want[:12]}), the encoder is "
                            f"{info.model_name} {got[:12]}: rebuild the index with this model")
        if tuple(info.input_size) != tuple(self.meta["input_size"]):
            raise CvglError(f"{where} was built at input size {self.meta['input_size']}, the encoder takes "
                            f"{list(info.input_size)}: rebuild the index with this model")

    def summary(self) -> dict[str, Any]:
        """What ``cvgl-edge index info`` prints; ``origin`` (lat, lon of the map centre) is the point
        the local-frame MAVLink messages are relative to, the EKF origin `localize --mavlink` asks for."""
        keys = ("kind", "tiles", "origin", "model_name", "model_sha256", "descriptor_dim", "input_size", "tile_size_m",
                "tile_size_px", "stride_px", "gsd_m", "min_similarity", "map", "map_sha256", "bounds", "created",
                "checksum")
        return {k: self.meta.get(k) for k in keys} | {"path": str(self.path) if self.path else None}


# --- FAISS -----------------------------------------------------------------------------------------
def make_faiss(descriptors: np.ndarray, kind: str = "flat", nlist: int | None = None,
               pq_m: int | None = None) -> tuple[Any, dict[str, Any]]:
    """FAISS inner-product index over unit descriptors; returns (index, settings to store)."""
    import faiss

    n, d = descriptors.shape
    x = np.ascontiguousarray(descriptors, np.float32)
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        index.add(x)
        return index, {}
    if kind != "ivfpq":
        raise CvglError(f"unknown index kind {kind!r}; choose {', '.join(KINDS)}")
    _check_ivfpq_size(n)
    nlist = int(nlist or max(1, min(int(4 * np.sqrt(n)), n // 39)))
    # sub-vectors of >= 4 dims: 1-dim sub-quantisers compress little and train very slowly in FAISS
    m = int(pq_m or max(v for v in range(1, max(1, min(64, d // 4)) + 1) if d % v == 0))
    if d % m:
        raise CvglError(f"--pq-m {m} must divide the descriptor size {d}")
    # "np": no polysemous training (FAISS' default for IVF-PQ): it only serves Hamming pre-filtering,
    # which the search does not use, and takes minutes for 64-byte codes.
    index = faiss.index_factory(d, f"IVF{nlist},PQ{m}np", faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    nprobe = min(nlist, 16)
    index.nprobe = nprobe
    return index, {"nlist": nlist, "pq_m": m, "nprobe": nprobe}


def _check_ivfpq_size(n: int) -> None:
    if n < 256:
        raise CvglError(f"--kind ivfpq needs at least 256 tiles to train its quantiser, the map gives {n}: "
                        "use --kind flat")


# --- file format -----------------------------------------------------------------------------------
def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in _ARRAYS:
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save_index(index: TileIndex, path: str | Path) -> Path:
    """Write the index file atomically (see the module docstring for the layout)."""
    import faiss

    arrays = {"faiss": faiss.serialize_index(index.faiss_index)}
    arrays.update({k: np.ascontiguousarray(index.tiles[k]) for k in _ARRAYS[1:]})
    meta = dict(index.meta, checksum=_checksum(arrays))
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    path = atomic_write(path, write)
    index.meta, index.path = meta, Path(path)
    return Path(path)


def load_index(path: str | Path) -> TileIndex:
    """Read and verify an index file; a missing, corrupted or foreign file is one CvglError line."""
    import faiss

    path = Path(path)
    if not path.is_file():
        raise CvglError(f"index not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except Exception as exc:  # noqa: BLE001 - zip/npy/JSON errors all mean a damaged file
        raise CvglError(f"index {path} is corrupted or not a cvgl-edge index ({first_line(exc)})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CvglError(f"{path} is not a cvgl-edge tile index")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CvglError(f"{path} has index format_version {meta.get('format_version')}; "
                        f"this cvgl-edge reads <= {FORMAT_VERSION}")
    missing = [k for k in _ARRAYS if k not in arrays]
    if missing or _checksum(arrays) != meta.get("checksum"):
        raise CvglError(f"index {path} is corrupted (checksum mismatch): rebuild it")
    try:
        faiss_index = faiss.deserialize_index(arrays["faiss"])
    except Exception as exc:  # noqa: BLE001
        raise CvglError(f"index {path} is corrupted ({first_line(exc)})") from exc
    if "nprobe" in meta:
        faiss_index.nprobe = int(meta["nprobe"])
    tiles = {k: arrays[k] for k in _ARRAYS[1:]}
    if faiss_index.ntotal != len(tiles["lat"]) or faiss_index.d != int(meta["descriptor_dim"]):
        raise CvglError(f"index {path} is inconsistent (descriptor and tile counts differ): rebuild it")
    _check_positions(path, tiles, meta)
    return TileIndex(faiss_index, tiles, meta, path)


def _check_positions(path: Path, tiles: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Refuse an index whose tiles are nowhere on Earth (built from a NaN or off-Earth georeference
    before read_map checked it): the loop would turn every fix into NaN."""
    lat, lon = np.asarray(tiles["lat"], np.float64), np.asarray(tiles["lon"], np.float64)
    origin = np.asarray(meta.get("origin") or [np.nan, np.nan], np.float64)
    ok = (np.isfinite(lat).all() and np.isfinite(lon).all() and np.isfinite(origin).all()
          and (np.abs(lat) <= 90).all() and (np.abs(lon) <= 180).all()
          and checks.known(meta.get("tile_size_m")) is not None and float(meta["tile_size_m"]) > 0)
    if not ok:
        raise CvglError(f"index {path} has tiles that are not on Earth (NaN or out-of-range positions): "
                        "rebuild it from a correctly georeferenced map")


def set_min_similarity(path: str | Path, value: float | None) -> TileIndex:
    """Store (or with None remove) the loop's best-match floor in an existing index file."""
    index = load_index(path)
    meta = {k: v for k, v in index.meta.items() if k not in ("checksum", "min_similarity")}
    if value is not None:
        meta["min_similarity"] = checks.min_similarity(value)
    index.meta = meta
    save_index(index, path)
    return index


# --- build -----------------------------------------------------------------------------------------
def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _plan_key(plan_record: dict[str, Any]) -> str:
    """Folder name of one plan's chunks: a hash of map, tiling, model and chunk size."""
    return hashlib.sha256(json.dumps(plan_record, sort_keys=True).encode()).hexdigest()[:16]


def _prepare_parts(out: Path, plan_record: dict[str, Any],
                   on_event: Callable[[str], None] | None = None) -> Path:
    """The chunk folder of exactly this build (created, with its ``plan.json``).

    Chunks of other plans (another map, tiling or model) stay where they are, untouched,
    and are reported: they are an interrupted build that resumes when run again.
    """
    parts = _parts_dir(out)
    mine = parts / _plan_key(plan_record)
    plan_file = mine / "plan.json"
    if plan_file.is_file():
        try:
            same = json.loads(plan_file.read_text()) == plan_record
        except (OSError, ValueError):
            same = False
        if not same:  # not this plan's folder after all (damaged plan.json): its chunks are unusable
            shutil.rmtree(mine)
    others = sorted(p.name for p in parts.iterdir() if p != mine) if parts.is_dir() else []
    if others and on_event is not None:
        names = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        on_event(f"{parts} also holds chunks of other interrupted builds of {out.name} (another map, tiling or "
                 f"model: {names}); kept: re-run such a build to resume it, or delete them")
    mine.mkdir(parents=True, exist_ok=True)
    if not plan_file.is_file():
        atomic_write_json(plan_record, plan_file)
    return mine


def _finish_parts(out: Path, mine: Path) -> None:
    """Remove this build's chunks (its index is written) and ``OUT.parts`` if nothing else is in it."""
    shutil.rmtree(mine, ignore_errors=True)
    try:
        _parts_dir(out).rmdir()
    except OSError:
        pass  # other plans' chunks are kept


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    atomic_write(path, write)


def _load_chunk(path: Path, rows: int, dim: int) -> np.ndarray | None:
    try:
        chunk = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return chunk if chunk.shape == (rows, dim) and chunk.dtype == np.float32 else None


def build_index(
    map_source: str | Path | GeoMap,
    encoder: Any,
    out: str | Path,
    *,
    tile_size: float = 120.0,
    overlap: float = 0.5,
    unit: str = "m",
    kind: str = "flat",
    batch_size: int = 32,
    chunk_tiles: int = 256,
    nlist: int | None = None,
    pq_m: int | None = None,
    corners: str | None = None,
    crs: str | None = None,
    show_progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    encoder_source: str | Path | None = None,
    min_similarity: float | None = None,
    on_event: Callable[[str], None] | None = None,
) -> TileIndex:
    """Cut ``map_source`` into tiles, embed them with ``encoder`` (satellite branch) and save the index.

    ``encoder`` follows :class:`cvgl_edge.runtime.base.Encoder`. Interrupted builds resume from
    ``OUT.parts/``; ``on_chunk(done_tiles, total)`` is called after each chunk (tests, UIs).
    ``encoder_source`` (the model file) is recorded so ``localize`` can default to it;
    ``min_similarity`` is the loop's default best-match floor (see :mod:`cvgl_edge.localize.tracker`).
    ``on_event(message)`` hears about other plans' chunks kept in ``OUT.parts``. A second build
    into the same ``out`` while this one runs is refused (one line), before it touches anything.
    """
    if kind not in KINDS:
        raise CvglError(f"unknown index kind {kind!r}; choose {', '.join(KINDS)}")
    if min_similarity is not None:
        checks.min_similarity(min_similarity)
    out = Path(out)
    geomap = map_source if isinstance(map_source, GeoMap) else read_map(map_source, corners, crs)
    plan = plan_tiles(geomap, tile_size, overlap, unit)
    if kind == "ivfpq":
        _check_ivfpq_size(len(plan))  # before hours of embedding, not after
    info = encoder.info
    prep = AerialPreprocess(tuple(info.input_size))
    dim = int(info.descriptor_dim)
    plan_record = {"map_sha256": geomap.sha256, "tiles": plan.fingerprint(), "model_sha256": info.model_sha256,
                   "model_name": info.model_name, "input_size": list(info.input_size), "descriptor_dim": dim,
                   "chunk_tiles": int(chunk_tiles)}
    with hold_output(out, "index build"):
        parts = _prepare_parts(out, plan_record, on_event)
        descriptors = _embed(geomap, plan, encoder, prep, parts, int(chunk_tiles), batch_size, dim, show_progress,
                             on_chunk)
        faiss_index, settings = make_faiss(descriptors, kind, nlist, pq_m)
        meta = _meta(geomap, plan, info, kind, settings)
        source = encoder_source or getattr(info, "source", None)
        meta["encoder_source"] = str(Path(source).resolve()) if source else None
        if min_similarity is not None:
            meta["min_similarity"] = checks.min_similarity(min_similarity)
        index = TileIndex(faiss_index, plan.arrays(), meta)
        save_index(index, out)
        _finish_parts(out, parts)
    return index


def _embed(geomap: GeoMap, plan: TilePlan, encoder: Any, prep: AerialPreprocess, parts: Path, chunk_tiles: int,
           batch_size: int, dim: int, show_progress: bool,
           on_chunk: Callable[[int, int], None] | None) -> np.ndarray:
    """(N, D) descriptors of the plan's tiles, chunk by chunk, reusing the chunks already in ``parts``."""

    n = len(plan)
    chunks: list[np.ndarray] = []
    step = max(1, int(batch_size))
    start = time.perf_counter()
    with make_progress(transient=not show_progress) as progress:
        task = progress.add_task(f"embedding {n} tiles", total=n, stats="", visible=show_progress)
        for c0 in range(0, n, chunk_tiles):
            c1 = min(n, c0 + chunk_tiles)
            part = parts / f"chunk_{c0 // chunk_tiles:06d}.npy"
            chunk = _load_chunk(part, c1 - c0, dim) if part.is_file() else None
            if chunk is None:
                pieces = []
                for b0 in range(c0, c1, step):
                    b1 = min(c1, b0 + step)
                    squares = [cut_tile(geomap.image, plan.rows[i], plan.cols[i], plan.size_px)
                               for i in range(b0, b1)]
                    pieces.append(np.asarray(encoder.encode(prep.batch(squares)), np.float32))
                    progress.advance(task, b1 - b0)
                chunk = np.concatenate(pieces)
                check_finite(chunk, f"tile (tiles {c0}..{c1 - 1})")   # never stored: it would match every query
                _save_npy(part, chunk)
            else:
                progress.advance(task, c1 - c0)
            chunks.append(chunk)
            rate = c1 / max(time.perf_counter() - start, 1e-9)
            progress.update(task, stats=f"{rate:.0f} tiles/s")
            if on_chunk is not None:
                on_chunk(c1, n)
    return np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)


def _meta(geomap: GeoMap, plan: TilePlan, info: Any, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, **settings,
        "tiles": len(plan), "model_name": info.model_name, "model_sha256": info.model_sha256,
        "descriptor_dim": int(info.descriptor_dim), "input_size": list(info.input_size),
        "view": "satellite", "polar": AerialPreprocess(tuple(info.input_size)).polar,
        "tile_size_m": plan.size_m, "tile_size_px": plan.size_px, "stride_px": plan.stride_px,
        "stride_m": plan.stride_px * plan.gsd_m, "gsd_m": plan.gsd_m,
        "map": str(Path(geomap.source).resolve()) if geomap.source else None, "map_sha256": geomap.sha256, "map_shape": list(geomap.shape),
        "origin": list(geomap.origin), "bounds": geomap.bounds_latlon(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cvgl_edge_version": cvgl_edge.__version__,
    }

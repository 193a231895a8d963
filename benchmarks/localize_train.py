"""Train a GeoSSM checkpoint for the localisation loop: nadir drone frames against map tiles.

``cvgl-edge train --data synthetic-drone[:N]`` now trains the same thing (north-up nadir
frames and tiles through the *same* aerial branch, as the loop uses them) on the built-in
synthetic worlds, with the full training loop (checkpoints, resume, eval). This script stays
for its harder, mission-like pairs, which the built-in data does not reproduce: the pairs are
made exactly as the loop sees them: a drone frame rendered like a synthetic mission's
(:class:`cvgl_edge.localize.mission.MissionSpec` camera, photometric change and noise),
cropped to the tile footprint and turned north-up by :class:`cvgl_edge.localize.loop.Localizer`'s
own functions, against the map tile around the same point (offset by up to half the tile
stride, as the nearest index tile is). Training worlds use other seeds than the evaluated
mission, so the evaluation map was never seen.

    .venv/bin/python benchmarks/localize_train.py --out runs/localize/nano.pt --steps 400

The checkpoint is an ordinary cvgl-edge checkpoint (``cvgl-edge index build --checkpoint``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cvgl_edge.data.georef import GeoRef
from cvgl_edge.data.normalize import MEAN_RGB, STD_RGB
from cvgl_edge.data.nuisance import photometric, sensor_noise
from cvgl_edge.data.render import render_drone
from cvgl_edge.data.worldgen import generate_world
from cvgl_edge.localize.mission import MissionSpec
from cvgl_edge.localize.preprocess import AerialPreprocess, frame_crop_px, north_up_crop
from cvgl_edge.losses.registry import build_loss
from cvgl_edge.models import build_model, save_checkpoint
from cvgl_edge.progress import console, progress_bar

MEAN = np.asarray(MEAN_RGB, np.float32).reshape(1, 3, 1, 1) * 255
STD = np.asarray(STD_RGB, np.float32).reshape(1, 3, 1, 1) * 255


def make_pairs(world_seeds: list[int], per_world: int, spec: MissionSpec, input_size: tuple[int, int],
               overlap: float = 0.5, world_px: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(frames, tiles) as uint8 (N, H, W, 3) at the encoder's input size, made as the loop makes them."""
    prep = AerialPreprocess(input_size)
    tile_m = spec.suggested_tile_m
    tile_px = int(round(tile_m / spec.metres_per_px))
    half_stride = 0.5 * tile_px * (1.0 - overlap)
    frames, tiles = [], []
    with progress_bar(f"rendering {len(world_seeds) * per_world} pairs", len(world_seeds) * per_world) as advance:
        for ws in world_seeds:
            geo = GeoRef(*spec.origin_latlon, spec.metres_per_px)
            world = generate_world(np.random.SeedSequence([ws, 707]), (world_px, world_px), geo)
            rng = np.random.default_rng([ws, 11])
            margin = tile_px + 2 * spec.altitude_m / spec.metres_per_px
            for _ in range(per_world):
                row, col = rng.uniform(margin, world_px - margin, 2)
                heading = rng.uniform(0.0, 2 * math.pi)
                alt = spec.altitude_m * rng.uniform(0.96, 1.04)
                img = render_drone(world, row, col, spec.frame_size, alt / spec.metres_per_px, 1e-4, heading,
                                   fov=math.radians(spec.hfov_deg))
                img = sensor_noise(photometric(img, rng, 0.5 * spec.nuisance), rng, 2.0 * spec.nuisance)
                side = frame_crop_px(img.shape[1], tile_m, alt, spec.hfov_deg)
                frames.append(prep.image(north_up_crop(img, side, math.degrees(heading))))
                dr, dc = rng.uniform(-half_stride, half_stride, 2)
                r0, c0 = int(round(row + dr - tile_px / 2)), int(round(col + dc - tile_px / 2))
                tiles.append(prep.image(world.rgb[r0:r0 + tile_px, c0:c0 + tile_px]))
                advance(1)
    return np.stack(frames), np.stack(tiles)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> NCHW normalised exactly as :func:`cvgl_edge.data.normalize.normalize_array` does."""
    x = images.transpose(0, 3, 1, 2).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray((x - MEAN) / STD))


def augment_pair(a: torch.Tensor, b: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same turn and flip on query and tile (the pair stays aligned; the loop's frames are north-up)."""
    k = int(rng.integers(4))
    a, b = torch.rot90(a, k, (2, 3)), torch.rot90(b, k, (2, 3))
    if rng.random() < 0.5:
        a, b = a.flip(3), b.flip(3)
    return a, b


@torch.no_grad()
def recall_at_1(model: torch.nn.Module, frames: np.ndarray, tiles: np.ndarray, batch: int = 64) -> dict[str, float]:
    """Frame -> tile retrieval among the held-out pairs (R@1, R@5) and the cosine of true/best-wrong pairs."""
    model.eval()
    q = torch.cat([model.encode(to_tensor(frames[i:i + batch]), "satellite") for i in range(0, len(frames), batch)])
    t = torch.cat([model.encode(to_tensor(tiles[i:i + batch]), "satellite") for i in range(0, len(tiles), batch)])
    sims = q @ t.T
    true = sims.diag()
    rank = (sims > true[:, None]).sum(1)
    wrong = sims.clone()
    wrong.fill_diagonal_(-2.0)
    model.train()
    return {"r1": round(float((rank < 1).float().mean()), 4), "r5": round(float((rank < 5).float().mean()), 4),
            "true_cos_mean": round(float(true.mean()), 4), "best_wrong_cos_mean": round(float(wrong.max(1)[0].mean()), 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    p.add_argument("--model", default="geossm-nano")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--worlds", type=int, default=8, help="training worlds (seeds 1000..)")
    p.add_argument("--per-world", type=int, default=400)
    p.add_argument("--altitude", type=float, default=150.0, help="altitude of the frames (as the mission's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds of training")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = build_model(args.model)
    size = tuple(model.input_sizes["satellite"])
    spec = MissionSpec(altitude_m=args.altitude)
    t0 = time.perf_counter()
    frames, tiles = make_pairs(list(range(1000, 1000 + args.worlds)), args.per_world, spec, size)
    val_frames, val_tiles = make_pairs([999], 256, spec, size)
    data_s = time.perf_counter() - t0
    console.print(f"{len(frames)} training pairs, {len(val_frames)} held-out pairs ({data_s:.0f} s)")
    loss_fn = build_loss("infonce")
    params = [p_ for n, p_ in model.named_parameters() if p_.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.03)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    history = [{"step": 0, **recall_at_1(model, val_frames, val_tiles)}]
    console.print(f"step 0: {history[-1]}")
    model.train()
    start, step, losses = time.perf_counter(), 0, []
    with progress_bar("training", args.steps) as advance:
        while step < args.steps:
            if args.time_limit and time.perf_counter() - start > args.time_limit:
                break
            idx = rng.choice(len(frames), args.batch_size, replace=False)
            a, b = augment_pair(to_tensor(frames[idx]), to_tensor(tiles[idx]), rng)
            loss = loss_fn(model.encode(a, "satellite"), model.encode(b, "satellite"))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            advance(1)
            if step % 100 == 0 or step == args.steps:
                history.append({"step": step, "loss": round(float(np.mean(losses[-50:])), 4),
                                **recall_at_1(model, val_frames, val_tiles)})
                console.print(f"step {step}: {history[-1]}")
    train_s = time.perf_counter() - start
    if history[-1]["step"] != step:
        history.append({"step": step, "loss": round(float(np.mean(losses[-50:])), 4),
                        **recall_at_1(model, val_frames, val_tiles)})
    model.eval()
    record = {"script": "benchmarks/localize_train.py", "command": " ".join([sys.executable, *sys.argv]),
              "model": args.model, "input_size": list(size), "steps": step, "batch_size": args.batch_size,
              "lr": args.lr, "threads": args.threads, "train_pairs": len(frames), "heldout_pairs": len(val_frames),
              "world_seeds": [1000, 1000 + args.worlds - 1], "heldout_world_seed": 999,
              "camera": {"altitude_m": spec.altitude_m, "hfov_deg": spec.hfov_deg, "frame_size": spec.frame_size,
                         "tile_m": spec.suggested_tile_m},
              "data_seconds": round(data_s, 1), "train_seconds": round(train_s, 1), "history": history}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, args.out, localize_training=record)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    console.print(f"{step} steps in {train_s:.0f} s -> {args.out}; held-out {history[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

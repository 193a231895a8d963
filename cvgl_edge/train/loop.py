"""The training loop: data, model, loss, optimiser, schedule, eval, checkpoints, resume."""

from __future__ import annotations

import json
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from cvgl_edge.data import build_dataset
from cvgl_edge.data.benchmark_protocols import build_protocols
from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.eval.embed import embed_pairs
from cvgl_edge.eval.evaluate import headline_direction
from cvgl_edge.eval.metrics import cross_view_metrics
from cvgl_edge.eval.protocol_eval import model_embedder, protocol_metrics
from cvgl_edge.eval.scoring import scoring_for
from cvgl_edge.io import atomic_torch_save, atomic_write, check_output_folder
from cvgl_edge.losses import build_loss
from cvgl_edge.models import build_model
from cvgl_edge.models.checkpoint import (
    checkpoint_payload,
    load_state_dict_strict,
    read_checkpoint,
)
from cvgl_edge.models.devices import resolve_device
from cvgl_edge.models.query_view import for_dataset
from cvgl_edge.progress import console, make_progress
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.distributed import (
    DistContext,
    barrier,
    gather_with_grad,
    init_distributed,
    shutdown,
)
from cvgl_edge.train.hard_negatives import (
    HardNegatives,
    first_epoch_after,
    similarity_neighbours,
)
from cvgl_edge.train.optim import SharpnessAware, build_optimizer, closure_step
from cvgl_edge.train.sampler import NeighbourSampler, ResumableSampler
from cvgl_edge.train.schedule import build_scheduler
from cvgl_edge.views import GROUND_TO_SATELLITE

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
METRICS_LOG = "metrics.jsonl"
HEADLINE = (GROUND_TO_SATELLITE, "R@1")


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    seconds: float
    last_checkpoint: Path
    final_metrics: dict[str, dict[str, float]] | None = None
    best_r1: float | None = None
    interrupted: bool = False
    query_view: str = "ground"  # "drone": the metrics' "ground" side is drone frames (aerial branch)
    history: list[dict[str, Any]] = field(default_factory=list)


def trim_metrics_log(path: Path, step: int) -> None:
    """Keep the records up to ``step`` (a resumed run's checkpoint): the steps a killed run
    logged after its last checkpoint are trained again, and each step is to appear once.
    A torn last line (killed mid-write) goes too. Rewritten atomically."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    atomic_write(path, lambda tmp: tmp.write_text("".join(f"{line}\n" for line in kept)))


def _config_differences(saved: dict[str, Any], built: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, saved, built) for every model-config entry both have and that differs."""
    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    return [(k, saved[k], built[k]) for k in saved if k in built and plain(saved[k]) != plain(built[k])]


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _StopFlag:
    """First Ctrl-C asks the loop to stop at the next step boundary and save."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not in the main thread
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        console.print("[yellow]interrupt: saving a checkpoint at the end of this step (Ctrl-C again to abort)")

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Owns the state of one run; ``run()`` trains until the step budget is spent."""

    def __init__(self, cfg: TrainConfig, resume: str | bool = False):
        self.cfg = cfg
        self.out_dir = Path(cfg.out)
        check_output_folder(self.out_dir, "--out")  # a folder, or not there yet; before any work
        self.device = resolve_device(cfg.device)
        self.ctx: DistContext = init_distributed(self.device)
        if self.ctx.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.ctx.local_rank)
        _seed_everything(cfg.seed + self.ctx.rank)

        resume_path = self._resume_path(resume)
        resume_state = self._read_resume(resume_path) if resume_path else None

        self.model = build_model(cfg.model, **cfg.model_overrides)
        if resume_state is not None:
            self._load_resumed_model(resume_state, resume_path)
        if cfg.pretrained and resume_state is None:
            self._load_pretrained(cfg.pretrained)
        self.model.to(self.device)
        self.loss_fn = self._build_loss().to(self.device)
        self.train_set = build_dataset(
            cfg.data, "train", augment=cfg.augment, seed=cfg.seed, polar=cfg.polar, **self._sizes()
        )
        self.val_set = build_dataset(cfg.data, "val", augment=False, seed=cfg.seed, polar=cfg.polar, **self._sizes())
        # University-1652 / VIGOR: their official protocol; paired data: the dataset's official scoring
        self.val_protocols = build_protocols(cfg.data, "val", polar=cfg.polar, **self._sizes())
        self.val_scoring = scoring_for(cfg.data)
        self.batches_per_epoch = ResumableSampler.batches_per_epoch(
            len(self.train_set), cfg.batch_size, self.ctx.world_size
        )
        if self.batches_per_epoch == 0:
            raise CvglError(
                f"the training split has {len(self.train_set)} pairs, fewer than one batch of "
                f"{cfg.batch_size * self.ctx.world_size}; lower --batch-size"
            )
        self.total_steps = cfg.max_steps or cfg.epochs * self.batches_per_epoch
        self.hard_negatives = HardNegatives(cfg.hard_negatives, cfg.neighbours, self.train_set, log=console.print)

        # drone data: queries go through the model's drone (aerial) view, in training and evaluation
        self.query_view: str = getattr(self.train_set, "query_view", "ground")
        self.pair_model: torch.nn.Module = for_dataset(self.model, self.train_set)
        self.train_model: torch.nn.Module = self.pair_model
        if self.ctx.enabled:
            device_ids = [self.ctx.local_rank] if self.device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.pair_model, device_ids=device_ids,
                # a drone run leaves the ground branch unused (unshared weights)
                find_unused_parameters=self.query_view != "ground",
            )
        self.optimizer = build_optimizer(
            cfg.optimizer, [self.model, self.loss_fn], cfg.lr, cfg.weight_decay, rho=cfg.rho
        )
        base = self.optimizer.base if isinstance(self.optimizer, SharpnessAware) else self.optimizer
        self.scheduler = build_scheduler(base, cfg.warmup_steps, self.total_steps)
        self.amp_dtype = self._amp_dtype()
        self.scaler = (
            torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        )
        self.step = 0
        self.best_r1: float | None = None
        if resume_state is not None:
            try:
                self._restore(resume_state)
            except (KeyError, TypeError, ValueError, RuntimeError) as error:  # optimizer/loss state of another run
                raise CvglError(f"cannot resume: {resume_path} holds training state this run cannot take "
                                f"({first_line(error)})") from None
            if self.ctx.is_main:
                trim_metrics_log(self.out_dir / METRICS_LOG, self.step)
            console.print(f"resumed from {resume_path} at step {self.step}/{self.total_steps}")

    # ----------------------------------------------------------------- set-up helpers
    def _sizes(self) -> dict[str, tuple[int, int]]:
        sizes = self.model.input_sizes
        return {"ground_size": tuple(sizes["ground"]), "satellite_size": tuple(sizes["satellite"])}

    def _build_loss(self) -> torch.nn.Module:
        """The training loss (a hook: distillation wraps the task loss, see train/distil.py)."""
        return build_loss(self.cfg.loss, **self.cfg.loss_params)

    def _amp_dtype(self) -> torch.dtype | None:
        if not self.cfg.amp or self.device.type != "cuda":
            return None
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if isinstance(self.optimizer, SharpnessAware):
            raise CvglError("fp16 AMP with SAM/ASAM is not supported on this GPU; pass --no-amp")
        return torch.float16

    def _load_pretrained(self, path: str) -> None:
        """The model's own loader (Vim weights for GeoSSM/VimGeo, ConvNeXt for LRFR); say what loaded."""
        reports = self.model.load_pretrained(path)
        for part, report in reports.items():
            console.print(f"pretrained {part} from {path}: {report.summary()}")

    def _resume_path(self, resume: str | bool) -> Path | None:
        if not resume:
            return None
        path = self.out_dir / LAST_CHECKPOINT if resume is True else Path(str(resume))
        if not path.is_file():
            if resume is True:
                console.print(f"no checkpoint at {path}: starting a new run")
                return None
            raise CvglError(f"cannot resume: checkpoint {path} does not exist")
        return path

    def _read_resume(self, path: Path) -> dict[str, Any]:
        """The checkpoint to continue, read weights-only (never trusted: a planted last.pt must
        not run code), checked against this run's settings."""
        try:
            state = read_checkpoint(path)
        except CvglError as error:  # corrupt, foreign or unsafe file
            raise CvglError(f"cannot resume: {error}") from None
        if "optimizer" not in state or "step" not in state:
            raise CvglError(f"cannot resume: {path} holds no training state (optimizer, step)")
        saved = state.get("train_config", {})
        for key in ("model", "model_overrides", "data", "batch_size", "loss", "hard_negatives", "neighbours"):
            if key in saved and saved[key] != getattr(self.cfg, key):
                raise CvglError(
                    f"cannot resume: {path} was trained with {key}={saved[key]!r}, "
                    f"this run asks for {getattr(self.cfg, key)!r}"
                )
        return state

    def _load_resumed_model(self, state: dict[str, Any], path: Path) -> None:
        """The checkpoint's weights into the freshly built model, or one line naming how the
        checkpoint's model differs from the one this run builds (before any data is read)."""
        built = self.model.config.to_dict()
        if state["model_name"] != self.model.model_name:
            raise CvglError(f"cannot resume: {path} holds a {state['model_name']} model, "
                            f"this run builds {self.model.model_name}")
        differences = _config_differences(state["model_config"], built)
        if differences:
            shown = ", ".join(f"{k}={a!r} (this run: {b!r})" for k, a, b in differences[:4])
            raise CvglError(f"cannot resume: {path} holds a {state['model_name']} model with {shown}")
        load_state_dict_strict(self.model, state["state_dict"], f"cannot resume: {path}",
                               against=f"the {self.model.model_name} model this run builds")

    def _restore(self, state: dict[str, Any]) -> None:
        self.loss_fn.load_state_dict(state.get("loss_state", {}))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_r1 = state.get("best_r1")
        if state.get("hard_negatives"):
            self.hard_negatives.load_state_dict(state["hard_negatives"])
        if self.ctx.world_size == state.get("world_size", 1):
            _set_rng_state(state["rng"])

    # ----------------------------------------------------------------- checkpoints, logs
    def save(self, name: str = LAST_CHECKPOINT) -> Path:
        path = self.out_dir / name
        if not self.ctx.is_main:
            return path
        payload = checkpoint_payload(self.model)
        payload.update(
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            loss_state=self.loss_fn.state_dict(),
            step=self.step,
            best_r1=self.best_r1,
            rng=_rng_state(),
            world_size=self.ctx.world_size,
            # the descriptor-neighbour tables, so a resumed run rebuilds the same batches
            hard_negatives=self.hard_negatives.state_dict() if self.hard_negatives.enabled else None,
            # query_view is derived from the data spec; recorded so readers need not parse specs
            train_config={**self.cfg.to_dict(), "query_view": self.query_view},
        )
        return atomic_torch_save(payload, path)  # a full disk: one line, the old file kept

    def log(self, record: dict[str, Any]) -> None:
        if not self.ctx.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / METRICS_LOG, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # ----------------------------------------------------------------- evaluation
    def val_metrics(self, model: torch.nn.Module, pair_model: torch.nn.Module,
                    description: str = "evaluating") -> dict[str, dict[str, float]]:
        """``model``'s metrics on the val split: the dataset's retrieval protocol where it has one
        (University-1652, VIGOR), else pair by pair through ``pair_model`` (its query-view adapter).
        Also scores a distillation teacher, so teacher and student are measured alike."""

        if self.val_protocols:
            return protocol_metrics(self.val_protocols, model_embedder(
                model, self.cfg.eval_batch_size, self.device, self.cfg.workers, self.cfg.show_progress))
        ground, satellite = embed_pairs(
            pair_model,
            self.val_set,
            batch_size=self.cfg.eval_batch_size,
            device=self.device,
            num_workers=self.cfg.workers,
            show_progress=self.cfg.show_progress,
            description=description,
        )
        return cross_view_metrics(ground, satellite, self.val_scoring)

    def evaluate(self) -> dict[str, dict[str, float]] | None:
        """Val metrics (``val_metrics``); best.pt follows the headline R@1."""

        metrics = None
        if self.ctx.is_main:
            metrics = self.val_metrics(self.model, self.pair_model)
            self.log({"step": self.step, "eval": metrics})
            r1 = metrics[headline_direction(metrics)][HEADLINE[1]]
            if self.best_r1 is None or r1 > self.best_r1:
                self.best_r1 = r1
                self.save(BEST_CHECKPOINT)
        barrier(self.ctx)
        return metrics

    # ----------------------------------------------------------------- training
    def _loader(self, epoch: int, start_batch: int) -> DataLoader:
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        sampler: ResumableSampler | NeighbourSampler
        if self.hard_negatives.enabled:
            sampler = NeighbourSampler(
                len(self.train_set), self.cfg.batch_size, self.cfg.seed, epoch,
                self.hard_negatives.table_for_epoch(epoch), self.hard_negatives.class_ids,
                start_batch=start_batch, rank=self.ctx.rank, world_size=self.ctx.world_size,
            )
        else:
            sampler = ResumableSampler(
                len(self.train_set),
                self.cfg.batch_size,
                self.cfg.seed,
                epoch,
                start_batch=start_batch,
                rank=self.ctx.rank,
                world_size=self.ctx.world_size,
            )
        return DataLoader(
            self.train_set,
            batch_size=self.cfg.batch_size,
            sampler=sampler,
            num_workers=self.cfg.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            # a private generator keeps the global RNG untouched by loader start-up,
            # so a resumed run draws the same random numbers as an uninterrupted one
            generator=torch.Generator().manual_seed(self.cfg.seed * 7919 + epoch),
        )

    def refresh_neighbours(self) -> None:
        """After an evaluation: the training set's descriptor neighbours become the hard-negative
        table from the next epoch on (only in the similarity modes)."""
        if not self.hard_negatives.uses_similarity:
            return
        table = self._similarity_table() if self.ctx.is_main else None
        if self.ctx.enabled:
            box = [table]
            torch.distributed.broadcast_object_list(box, src=0)
            table = box[0]
        from_epoch = first_epoch_after(self.step, self.batches_per_epoch)
        self.hard_negatives.set_similarity(table, from_epoch)
        self.log({"step": self.step, "hard_negatives": "similarity", "from_epoch": from_epoch})

    def _similarity_table(self) -> np.ndarray:
        """Embed the training set without augmentation (both views) and list each item's most
        similar other satellite descriptors to its query descriptor."""
        self.train_set.eval()
        try:
            query, satellite = embed_pairs(
                self.pair_model, self.train_set, batch_size=self.cfg.eval_batch_size, device=self.device,
                num_workers=self.cfg.workers, show_progress=self.cfg.show_progress, description="hard negatives",
            )
        finally:
            self.train_set.train()
        return similarity_neighbours(query.to(self.device), satellite.to(self.device), self.cfg.neighbours)

    def _log_extras(self) -> dict[str, Any]:
        """Extra numbers for the step log (a hook: distillation adds its loss terms)."""
        return {}

    def _loss(self, ground: torch.Tensor, satellite: torch.Tensor) -> torch.Tensor:
        with torch.autocast(
            device_type=self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            ground_desc, satellite_desc = self.train_model(ground, satellite)
        ground_desc = gather_with_grad(ground_desc.float(), self.ctx)
        satellite_desc = gather_with_grad(satellite_desc.float(), self.ctx)
        return self.loss_fn(ground_desc, satellite_desc)

    def _train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
        ground = batch["ground"].to(self.device, non_blocking=True)
        satellite = batch["satellite"].to(self.device, non_blocking=True)
        parameters = [p for g in self.optimizer.param_groups for p in g["params"]]
        loss, grad_norm = closure_step(
            self.optimizer,
            lambda: self._loss(ground, satellite),
            self.cfg.clip_norm,
            parameters,
            scaler=self.scaler,
        )
        value = float(loss)
        if not math.isfinite(value):
            raise CvglError(
                f"loss became {value} at step {self.step + 1}: training stopped and the last good "
                f"checkpoint ({self.out_dir / LAST_CHECKPOINT}) was left untouched; try a lower --lr"
            )
        self.scheduler.step()
        return value, grad_norm

    def run(self, stop_at: int | None = None) -> TrainResult:
        """Train to the step budget; ``stop_at`` stops early as an interrupt would (tests)."""
        cfg = self.cfg
        start = time.perf_counter()
        self.model.train()
        pairs_per_step = cfg.batch_size * self.ctx.world_size
        final_metrics = None
        interrupted = False
        with _StopFlag() as stop, make_progress() as progress:
            task = progress.add_task(
                "training", total=self.total_steps, completed=self.step, stats="",
                visible=cfg.show_progress and self.ctx.is_main,
            )
            window_start, window_pairs = time.perf_counter(), 0
            while self.step < self.total_steps and not interrupted:
                epoch, offset = divmod(self.step, self.batches_per_epoch)
                for batch in self._loader(epoch, offset):
                    loss, grad_norm = self._train_step(batch)
                    self.step += 1
                    window_pairs += pairs_per_step
                    elapsed = time.perf_counter() - window_start
                    throughput = window_pairs / max(elapsed, 1e-9)
                    lr = self.optimizer.param_groups[0]["lr"]
                    progress.update(
                        task, completed=self.step,
                        stats=f"loss {loss:.4f}  lr {lr:.2e}  {throughput:.1f} pairs/s",
                    )
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        self.log({"step": self.step, "epoch": epoch, "loss": loss, "lr": lr,
                                  "grad_norm": grad_norm, "pairs_per_s": throughput, **self._log_extras()})
                        window_start, window_pairs = time.perf_counter(), 0
                    if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < self.total_steps:
                        self.evaluate()
                        self.refresh_neighbours()
                        self.model.train()
                    if cfg.save_every and self.step % cfg.save_every == 0:
                        self.save()
                    if stop.requested or (stop_at is not None and self.step >= stop_at):
                        interrupted = True
                    if interrupted or self.step >= self.total_steps:
                        break
        last = self.save()  # before the final eval, so a failing eval loses no training
        if not interrupted:
            best_before = self.best_r1
            final_metrics = self.evaluate()
            if self.best_r1 != best_before:
                self.save()  # record the new best R@1 for a later --resume
        shutdown(self.ctx)
        return TrainResult(
            out_dir=self.out_dir,
            steps=self.step,
            seconds=time.perf_counter() - start,
            last_checkpoint=last,
            final_metrics=final_metrics,
            best_r1=self.best_r1,
            interrupted=interrupted,
            query_view=self.query_view,
        )


def train(cfg: TrainConfig, resume: str | bool = False) -> TrainResult:
    """Build a Trainer from the config and run it."""
    return Trainer(cfg, resume=resume).run()

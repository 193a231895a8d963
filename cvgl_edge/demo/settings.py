"""What the demo runs: its two training configs, the export, the synthetic mission and the loop.

Why two models: the ground->satellite task (street panoramas against tiles) and the
localisation loop's task (north-up drone frames against map tiles, both through the
aerial branch) want different inputs: the first trains best on polar-transformed tiles
(SAFA), the loop matches square frames against square tiles. A second small model trained
on mission-like drone pairs (:mod:`cvgl_edge.data.drone_pairs`) is the cleanest way to a
loop model in minutes, and leaves the ground model's numbers as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvgl_edge.data.mission import MissionSpec
from cvgl_edge.train.config import TrainConfig

DEMO_MODEL = "geossm-nano"
DEMO_GROUND_SIZE = (64, 256)
STAGES = ("ground", "drone", "export", "mission", "index", "localize")


@dataclass
class DemoSettings:
    out: str = "runs/demo"
    train_pairs: int = 2000
    steps: int = 300
    polar: bool = True
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    show_progress: bool = True
    # the localisation model and the loop
    drone_pairs: int = 2000
    drone_steps: int = 600
    drone_lr: float = 1e-3
    export: bool = True
    export_ground: bool = True        # also export the ground model (the loop needs only the drone model's)
    localize: bool = True
    verify_pairs: int = 200
    mission_seed: int = 0
    mission_frames: int = 150
    mission_map_px: int = 1536
    threads: int | None = None
    #: model field overrides for both models (tests use a tiny model)
    model_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def train_config(self) -> TrainConfig:
        """Stage 1: ground panoramas -> satellite tiles (the paper's task), in OUT/."""
        overrides = dict(self.model_overrides)
        if self.polar:  # the polar tile has the panorama's shape and patch grid
            overrides["satellite_size"] = overrides.get("ground_size", DEMO_GROUND_SIZE)
        return self._config(overrides, f"synthetic:{self.train_pairs}", self.out, self.steps, self.lr, "ddal",
                            polar=self.polar)

    def drone_config(self) -> TrainConfig:
        """Stage 2: drone frames -> map tiles through the aerial branch (the loop's model), in OUT/drone/."""
        return self._config(dict(self.model_overrides), f"synthetic-drone:{self.drone_pairs}",
                            str(self.out_dir / "drone"), self.drone_steps, self.drone_lr, "infonce", polar=False)

    def _config(self, overrides: dict[str, Any], data: str, out: str, steps: int, lr: float, loss: str,
                polar: bool) -> TrainConfig:
        return TrainConfig(model=DEMO_MODEL, model_overrides=overrides, polar=polar, data=data, out=out,
                           max_steps=steps, batch_size=self.batch_size, lr=lr, weight_decay=0.03,
                           optimizer="adamw", warmup_steps=max(1, steps // 20), loss=loss, eval_every=0,
                           save_every=100, seed=self.seed, device=self.device, show_progress=self.show_progress)

    def mission_spec(self) -> MissionSpec:
        """The flight the loop is run over: a world no training pair came from."""
        return MissionSpec(seed=self.mission_seed, map_px=self.mission_map_px, frames=self.mission_frames)

"""Training runs: the config (:mod:`~splinescope.train.config`), what it builds
(:mod:`~splinescope.train.build`) and the loop (:mod:`~splinescope.train.loop`)."""

from splinescope.store.checkpoints import snapshot_path, snapshot_steps
from splinescope.train.build import (
    BatchSampler,
    load_data,
    make_loss,
    make_model,
    make_optimizer,
    make_probes,
    make_schedule,
    mse_onehot,
)
from splinescope.train.config import (
    DEFAULT_PROBES,
    FIELD_NAMES,
    TrainConfig,
    apply_overrides,
    load_config_file,
    parse_assignment,
)
from splinescope.train.loop import Progress, TrainResult, check_runs_dir, headline_values, train

__all__ = [
    "DEFAULT_PROBES",
    "FIELD_NAMES",
    "BatchSampler",
    "Progress",
    "TrainConfig",
    "TrainResult",
    "apply_overrides",
    "check_runs_dir",
    "headline_values",
    "load_config_file",
    "load_data",
    "make_loss",
    "make_model",
    "make_optimizer",
    "make_probes",
    "make_schedule",
    "mse_onehot",
    "parse_assignment",
    "snapshot_path",
    "snapshot_steps",
    "train",
]

"""A tiny Hugging Face classifier built from a config (no weights downloaded) and its data."""

from __future__ import annotations

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class TinyConfig(PretrainedConfig):
    model_type = "splinescope-tiny-mlp"

    def __init__(self, n_features: int = 6, width: int = 16, num_labels: int = 3, **kwargs):
        self.n_features = n_features
        self.width = width
        super().__init__(num_labels=num_labels, **kwargs)


class TinyClassifier(PreTrainedModel):
    """MLP n_features-width-width-num_labels with ReLU; main input ``features``."""

    config_class = TinyConfig
    main_input_name = "features"

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(config.n_features, config.width),
            torch.nn.ReLU(),
            torch.nn.Linear(config.width, config.width),
            torch.nn.ReLU(),
            torch.nn.Linear(config.width, config.num_labels),
        )
        self.post_init()

    def forward(self, features=None, labels=None, **kwargs):
        logits = self.net(features)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class DictDataset(torch.utils.data.Dataset):
    """``{"features": x[i], "labels": y[i]}`` items."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": self.x[i], "labels": self.y[i]}

"""Reference architectures for presets and tests: MLP, a small CNN, a small pre-activation ResNet.

>>> from splinescope.models import MLP
>>> model = MLP(64, 10, width=200, depth=2, init_scale=8.0)   # Omnigrok's large init
>>> [name for name, _ in model.named_children()]
['flatten', 'fc1', 'act1', 'fc2', 'act2', 'out']
"""

from splinescope.models._build import MODELS, build_model
from splinescope.models._cnn import SmallCNN
from splinescope.models._common import ACTIVATIONS
from splinescope.models._mlp import MLP
from splinescope.models._resnet import PreActBlock, PreActResNet

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODELS",
    "PreActBlock",
    "PreActResNet",
    "SmallCNN",
    "build_model",
]

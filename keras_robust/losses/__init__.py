"""Drop-in classification losses for `model.compile(loss=...)`.

Every loss takes logits by default (`from_logits=True`), sparse integer
labels or dense (one-hot or soft) targets, computes in float32 under any
dtype policy, and uses Keras's reductions and `sample_weight`.
"""

from keras_robust.losses.active_passive import (
    ActivePassiveLoss,
    SymmetricCrossentropy,
)
from keras_robust.losses.adr import ADRLoss, adr_targets
from keras_robust.losses.base import RobustLoss
from keras_robust.losses.generalized import (
    GeneralizedCrossentropy,
    NormalizedGeneralizedCrossentropy,
)
from keras_robust.losses.normalized import (
    NormalizedCrossentropy,
    NormalizedFocalCrossentropy,
)
from keras_robust.losses.reverse import MeanAbsoluteError, ReverseCrossentropy
from keras_robust.losses.soft_targets import (
    BootstrappingCrossentropy,
    LabelSmoothingCrossentropy,
    MaxSupCrossentropy,
    SoftTargetCrossentropy,
)

__all__ = [
    "ADRLoss",
    "ActivePassiveLoss",
    "BootstrappingCrossentropy",
    "GeneralizedCrossentropy",
    "LabelSmoothingCrossentropy",
    "MaxSupCrossentropy",
    "MeanAbsoluteError",
    "NormalizedCrossentropy",
    "NormalizedFocalCrossentropy",
    "NormalizedGeneralizedCrossentropy",
    "ReverseCrossentropy",
    "RobustLoss",
    "SoftTargetCrossentropy",
    "SymmetricCrossentropy",
    "adr_targets",
]

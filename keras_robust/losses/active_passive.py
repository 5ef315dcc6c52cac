"""Active-passive combinations (Ma et al. 2020) and symmetric cross-entropy."""

import keras

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
from keras_robust.losses.soft_targets import SoftTargetCrossentropy
from keras_robust.validation import validate_number

# Names accepted by `ActivePassiveLoss`, each built with its defaults.
ACTIVE_LOSSES = {
    "ce": SoftTargetCrossentropy,
    "nce": NormalizedCrossentropy,
    "nfl": NormalizedFocalCrossentropy,
    "gce": GeneralizedCrossentropy,
    "ngce": NormalizedGeneralizedCrossentropy,
}
PASSIVE_LOSSES = {
    "rce": ReverseCrossentropy,
    "mae": MeanAbsoluteError,
}


# The hyperparameter keywords of the named components.
COMPONENT_KEYWORDS = {
    "gce": ("q",),
    "ngce": ("q",),
    "nfl": ("gamma",),
    "rce": ("label_clip",),
}


def _route_keywords(components, keywords):
    """Which component takes each given hyperparameter keyword.

    Returns:
        `{"active": {...}, "passive": {...}}` keyword arguments.

    Raises:
        ValueError: For a keyword that no named component takes.
    """
    routed = {role: {} for role in components}
    for key, value in keywords.items():
        if value is None:
            continue
        takers = [
            role
            for role, component in components.items()
            if isinstance(component, str)
            and key in COMPONENT_KEYWORDS.get(component.lower(), ())
        ]
        if not takers:
            owners = [n for n, keys in COMPONENT_KEYWORDS.items() if key in keys]
            raise ValueError(
                f"Argument `{key}` sets a hyperparameter of {owners} given by "
                f"name, but the components are active={components['active']!r}, "
                f"passive={components['passive']!r} (set it on a component "
                f"instance instead). Received: {key}={value!r}"
            )
        for role in takers:
            routed[role][key] = value
    return routed


def _component(argument, value, names, from_logits, keywords):
    """A component loss, built by name with `keywords`, or the instance given."""
    if isinstance(value, RobustLoss):
        return value
    if isinstance(value, str) and value.lower() in names:
        return names[value.lower()](from_logits=from_logits, **keywords)
    raise ValueError(
        f"Argument `{argument}` must be one of {sorted(names)} or a "
        f"keras_robust.losses.RobustLoss instance. Received: {argument}={value!r}"
    )


@keras.saving.register_keras_serializable(package="keras_robust")
class ActivePassiveLoss(RobustLoss):
    """Active-passive loss (APL): `alpha * active + beta * passive`.

    An *active* loss (NCE, NFL, NGCE; or CE, GCE) raises the probability of
    the labelled class, a *passive* loss (RCE, MAE) lowers the others'. A
    normalized active loss is robust to label noise but underfits; adding a
    passive one restores fitting while staying robust.

    Published `(alpha, beta)` of the reference code (Ma et al. 2020):

    | dataset   | NCE/NFL/NGCE + RCE | NCE/NFL/NGCE + MAE |
    |-----------|--------------------|--------------------|
    | MNIST     | (1, 10)            | (1, 10)            |
    | CIFAR-10  | (1, 1)             | (1, 1)             |
    | CIFAR-100 | (10, 0.1)          | (10, 1)            |
    | WebVision | (50, 0.1)          | —                  |

    with `gamma = 0.5` for NFL and `q = 0.7` for NGCE (the defaults of
    those classes).

    Args:
        active: `"nce"`, `"nfl"`, `"ngce"`, `"ce"` or `"gce"`, or a
            `RobustLoss` instance (e.g. `NormalizedFocalCrossentropy(gamma=1)`).
        passive: `"rce"` or `"mae"`, or a `RobustLoss` instance.
        alpha: Weight of the active term, `>= 0`.
        beta: Weight of the passive term, `>= 0`.
        from_logits: Whether `y_pred` holds logits (default) or
            probabilities; it overrides the setting of component instances.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance; by default `"nce_rce"` etc.
        dtype: Ignored for the computation, which runs in float32.
        q: Keyword only: `q` of a named `"gce"`/`"ngce"` component
            (default 0.7), as the reference constructors take it.
        gamma: Keyword only: `gamma` of a named `"nfl"` component (0.5).
        label_clip: Keyword only: `label_clip` of a named `"rce"` component
            (1e-4).

    Raises:
        ValueError: For an unknown loss name, a negative `alpha`/`beta`, or
            a component keyword that no named component takes.

    Example:

    >>> import keras, keras_robust
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile(
    ...     optimizer="adam",
    ...     loss=keras_robust.losses.ActivePassiveLoss(
    ...         "nce", "rce", alpha=1.0, beta=1.0
    ...     ),
    ... )

    References:
        Ma et al., "Normalized Loss Functions for Deep Learning with Noisy
        Labels", ICML 2020.
    """

    def __init__(
        self,
        active="nce",
        passive="rce",
        alpha=1.0,
        beta=1.0,
        from_logits=True,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
        *,
        q=None,
        gamma=None,
        label_clip=None,
    ):
        routed = _route_keywords(
            {"active": active, "passive": passive},
            {"q": q, "gamma": gamma, "label_clip": label_clip},
        )
        self.active = _component(
            "active", active, ACTIVE_LOSSES, from_logits, routed["active"]
        )
        self.passive = _component(
            "passive", passive, PASSIVE_LOSSES, from_logits, routed["passive"]
        )
        if name is None:
            name = f"{_short_name(active)}_{_short_name(passive)}"
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.alpha = validate_number("alpha", alpha, low=0.0)
        self.beta = validate_number("beta", beta, low=0.0)

    def per_example_loss(self, targets, log_probs):
        return self.alpha * self.active.per_example_loss(
            targets, log_probs
        ) + self.beta * self.passive.per_example_loss(targets, log_probs)

    def get_config(self):
        return {
            **super().get_config(),
            "active": keras.saving.serialize_keras_object(self.active),
            "passive": keras.saving.serialize_keras_object(self.passive),
            "alpha": self.alpha,
            "beta": self.beta,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("active", "passive"):
            if isinstance(config[key], dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _short_name(value):
    if isinstance(value, str):
        return value.lower()
    return type(value).__name__.lower()


@keras.saving.register_keras_serializable(package="keras_robust")
class SymmetricCrossentropy(ActivePassiveLoss):
    """Symmetric cross-entropy (SCE): `alpha * CE + beta * RCE`.

    RCE takes the reference code's form (`log(1e-4)` for `log 0`, see
    `ReverseCrossentropy`). Published `(alpha, beta)`: CIFAR-10 (0.1, 1.0),
    the default; CIFAR-100 (6.0, 0.1).

    Args:
        alpha: Weight of cross-entropy, `>= 0`. Default 0.1.
        beta: Weight of reverse cross-entropy, `>= 0`. Default 1.0.
        label_clip: Smallest target value inside RCE's logarithm. Default 1e-4.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: For a negative `alpha`/`beta` or `label_clip` outside
            `(0, 1)`.

    References:
        Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy
        Labels", ICCV 2019.
    """

    def __init__(
        self,
        alpha=0.1,
        beta=1.0,
        label_clip=1e-4,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="symmetric_crossentropy",
        dtype=None,
    ):
        super().__init__(
            active=SoftTargetCrossentropy(from_logits=from_logits),
            passive=ReverseCrossentropy(label_clip=label_clip, from_logits=from_logits),
            alpha=alpha,
            beta=beta,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.label_clip = self.passive.label_clip

    def get_config(self):
        config = super().get_config()
        del config["active"], config["passive"]
        return {**config, "label_clip": self.label_clip}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

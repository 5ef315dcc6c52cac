"""A label-noise transition layer for forward loss correction."""

import keras
import numpy as np
from keras import ops

from keras_robust.validation import validate_integer

# Smallest transition probability used inside a logarithm. A zero entry of a
# fixed matrix gives a log-probability of about -27.6 instead of -inf, which
# keeps gradients finite when a class never occurs as a noisy label.
_LOG_FLOOR = 1e-12
# Learnable mode initialises its weights as log(clip(T0, _INIT_FLOOR, 1)).
_INIT_FLOOR = 1e-6
# Tolerance on the row sums of a given transition matrix.
_ROW_SUM_ATOL = 1e-4


def _validate_num_classes(num_classes):
    return validate_integer("num_classes", num_classes, low=2)


def _validate_transition(transition, num_classes):
    """Checks a row-stochastic [K, K] matrix and returns it as float64."""
    try:
        summary = np.array2string(
            np.asarray(transition, dtype="float64"),
            threshold=50,
            precision=4,
            separator=", ",
            max_line_width=10**6,
        )
    except (TypeError, ValueError):
        summary = repr(transition)
    try:
        matrix = np.asarray(transition, dtype="float64")
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape != (num_classes, num_classes):
        shape = None if matrix is None else matrix.shape
        raise ValueError(
            f"Argument `transition` must be a ({num_classes}, {num_classes}) "
            f"matrix (num_classes={num_classes}), got shape {shape}. "
            f"Received: transition={summary}"
        )
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError(
            "Argument `transition` must hold finite, non-negative "
            f"probabilities. Received: transition={summary}"
        )
    row_sums = matrix.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=_ROW_SUM_ATOL):
        raise ValueError(
            "Argument `transition` must be row-stochastic: row i holds "
            "P(noisy label = j | clean label = i) and sums to 1, got row sums "
            f"{np.array2string(row_sums, threshold=20, precision=6)}. "
            f"Received: transition={summary}"
        )
    return matrix


@keras.saving.register_keras_serializable(package="keras_robust")
class NoiseAdaptation(keras.layers.Layer):
    """Maps clean-class logits to logits of the noisy-label distribution.

    The layer models label noise with a row-stochastic transition matrix
    `T[i, j] = P(noisy label = j | clean label = i)`. Given the logits `z` of
    a classifier of the clean labels, it returns `log(softmax(z) @ T)`, the
    log-probabilities of the noisy labels, computed in float32 in the stable
    form `logsumexp(log_softmax(z)[..., :, None] + log(T), axis=-2)`. Any
    classification loss with `from_logits=True` applied to the output then
    fits the noisy labels while the layer below it learns the clean ones:
    this is the forward loss correction of Patrini et al. (2017). The output
    is a vector of log-probabilities, so `softmax(output) = softmax(z) @ T`.

    Usage: wrap the classifier, train the wrapper on the noisy labels, and
    deploy (and evaluate, and attack) the classifier alone:

    ```python
    noisy_model = keras.Sequential([base, NoiseAdaptation(num_classes, T)])
    noisy_model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    noisy_model.fit(x_train, noisy_labels)
    predictions = base.predict(x_test)  # clean-class logits
    ```

    Two modes:

    - Fixed (`trainable=False`, the default): `T` is known or estimated
      beforehand, e.g. with `keras_robust.data.transition_matrix` or from
      anchor points as in Patrini et al. It is stored as a non-trainable
      weight.
    - Learnable (`trainable=True`): the noise adaptation layer of
      Goldberger & Ben-Reuven (2017). `T = softmax(W, axis=-1)` with a
      trainable `[K, K]` weight `W` initialised to
      `log(clip(T0, 1e-6, 1))`, where `T0` is `transition` (identity when
      `None`). `T` stays row-stochastic by construction; the `transition`
      property returns its current value. The gradient reaching an entry of
      `T0` close to zero is proportional to that entry, so from the identity
      the off-diagonal entries move slowly; a smoothed start such as
      `transition_matrix(num_classes, 0.1)`, or an estimate of the noise
      (for instance the confusion matrix of `base` on the noisy labels), as
      in Goldberger & Ben-Reuven, learns faster.

    Args:
        num_classes: Integer K >= 2, the number of classes; the input's last
            dimension.
        transition: `None` (identity, no noise) or a `[K, K]` array-like,
            row-stochastic matrix (non-negative, finite, each row summing to
            1 within 1e-4). The fixed matrix in fixed mode, the initial value
            in learnable mode.
        trainable: Boolean, whether `T` is learned (see above). The mode is
            fixed at construction; setting `layer.trainable = False` later
            freezes a learnable layer as for any Keras layer.
        **kwargs: Standard layer arguments, such as `name`.

    Input shape:
        `[..., K]` logits of the clean classes, any float dtype.

    Output shape:
        `[..., K]` float32 logits (log-probabilities) of the noisy labels.

    Raises:
        ValueError: When `num_classes` is not an integer >= 2, `transition`
            is not a valid `[K, K]` row-stochastic matrix, or (in `build`)
            the input's last dimension is not `num_classes`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_robust
    >>> T = keras_robust.data.transition_matrix(3, 0.2)
    >>> layer = keras_robust.layers.NoiseAdaptation(3, transition=T)
    >>> z = np.array([[4.0, 0.0, 0.0]], dtype="float32")
    >>> noisy_probs = keras.ops.softmax(layer(z))  # == softmax(z) @ T
    >>> tuple(noisy_probs.shape)
    (1, 3)

    References:
        - Patrini et al., 2017. "Making Deep Neural Networks Robust to Label
          Noise: a Loss Correction Approach". CVPR.
        - Goldberger & Ben-Reuven, 2017. "Training Deep Neural-Networks Using
          a Noise Adaptation Layer". ICLR.
    """

    def __init__(self, num_classes, transition=None, trainable=False, **kwargs):
        # The output is float32 whatever the dtype policy: inputs are cast in
        # `call` and the weights are never autocast to a lower precision.
        kwargs.setdefault("autocast", False)
        super().__init__(trainable=bool(trainable), **kwargs)
        self.num_classes = _validate_num_classes(num_classes)
        if transition is None:
            self.transition_init = None
            initial = np.eye(self.num_classes)
        else:
            initial = _validate_transition(transition, self.num_classes)
            self.transition_init = initial.tolist()
        self._learnable = bool(trainable)
        self._initial_transition = initial
        self._weight = None

    @property
    def learnable(self):
        """Whether `T` is learned (`trainable=True` at construction)."""
        return self._learnable

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.num_classes:
            raise ValueError(
                f"The input's last dimension must be num_classes="
                f"{self.num_classes}. Received: input_shape={tuple(input_shape)}"
            )
        shape = (self.num_classes, self.num_classes)
        if self._learnable:
            self._weight = self.add_weight(
                shape=shape,
                initializer="zeros",
                dtype="float32",
                trainable=True,
                autocast=False,
                name="transition_logits",
            )
            self._weight.assign(
                np.log(np.clip(self._initial_transition, _INIT_FLOOR, 1.0))
            )
        else:
            self._weight = self.add_weight(
                shape=shape,
                initializer="zeros",
                dtype="float32",
                trainable=False,
                autocast=False,
                name="transition",
            )
            self._weight.assign(self._initial_transition)

    @property
    def transition(self):
        """The current transition matrix `T`, a float32 `[K, K]` tensor.

        Before the layer is built, this is the initial matrix.
        """
        if self._weight is None:
            return ops.convert_to_tensor(self._initial_transition, dtype="float32")
        if self._learnable:
            return ops.softmax(self._weight, axis=-1)
        return ops.convert_to_tensor(self._weight)

    def _log_transition(self):
        if self._learnable:
            return ops.log_softmax(self._weight, axis=-1)
        return ops.log(ops.maximum(self._weight, _LOG_FLOOR))

    def call(self, inputs):
        log_probs = ops.log_softmax(ops.cast(inputs, "float32"), axis=-1)
        # log sum_i p_i T[i, j] for every noisy class j.
        joint = ops.expand_dims(log_probs, -1) + self._log_transition()
        return ops.logsumexp(joint, axis=-2)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "transition": self.transition_init,
                # The mode, not the current freeze state (saved below).
                "trainable": self._learnable,
            }
        )
        if self._learnable and not self.trainable:
            config["frozen"] = True
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        frozen = config.pop("frozen", False)
        layer = super().from_config(config)
        if frozen:
            layer.trainable = False
        return layer

"""Per-channel input standardization as a layer of the model."""

import keras
import numpy as np
from keras import ops


def _as_vector(name, value):
    """Converts a scalar or a 1-D sequence of numbers to a float64 array."""
    try:
        array = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim > 1 or array.size == 0:
        raise ValueError(
            f"Argument `{name}` must be a number or a non-empty 1-D sequence "
            f"of numbers (one per channel). Received: {name}={value!r}"
        )
    return array


def _to_config_value(array):
    """A float64 array as a Python float (0-D) or a list of floats (1-D)."""
    return float(array) if array.ndim == 0 else array.tolist()


@keras.saving.register_keras_serializable(package="keras_robust")
class InputStandardization(keras.layers.Layer):
    """Standardizes inputs with a fixed mean and standard deviation.

    Computes `(x - mean) / std`, broadcasting `mean` and `std` along `axis`
    (the channel axis). Placing this layer first in the model, instead of
    standardizing the data set beforehand, keeps the model's input in pixel
    units, e.g. `[0, 1]`. Adversarial attacks then perturb the raw image: the
    budget `epsilon` (such as 8/255 for CIFAR-10) and the clipping range
    `value_range=(0, 1)` keep their usual meaning, and every channel gets the
    same budget. With standardized inputs the same `epsilon` would mean a
    different, channel-dependent perturbation size in pixel space, and
    results would not be comparable with published ones.

    The layer has no weights; `mean` and `std` are part of its config. It
    computes in the layer's compute dtype, so it also runs under a
    `"mixed_float16"` dtype policy.

    Args:
        mean: Number, or sequence with one value per channel. Must be finite.
        std: Number, or sequence with one value per channel. Every value must
            be finite and strictly positive. When both `mean` and `std` are
            sequences, their lengths must be equal unless one has length 1.
        axis: Integer, the channel axis of the input. Defaults to `-1`
            (channels-last images). A per-channel `mean` or `std` must have
            as many values as the input has entries along `axis`.
        **kwargs: Standard layer arguments, such as `name` and `dtype`.

    Raises:
        ValueError: When `mean` or `std` is not finite, `std` is not positive,
            their lengths differ, `axis` is not an integer, or (in `build`) the
            number of channels does not match the input.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_robust
    >>> standardize = keras_robust.layers.InputStandardization(
    ...     mean=[0.4914, 0.4822, 0.4465], std=[0.2470, 0.2435, 0.2616]
    ... )
    >>> x = np.full((1, 2, 2, 3), 0.5, dtype="float32")
    >>> y = standardize(x)
    >>> tuple(y.shape)
    (1, 2, 2, 3)

    In a model trained against attacks, the layer comes right after the
    input, so the attacks see pixels in `[0, 1]`:

    ```python
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras_robust.layers.InputStandardization(
            mean=[0.4914, 0.4822, 0.4465], std=[0.2470, 0.2435, 0.2616]
        ),
        backbone,
    ])
    ```

    References:
        - Madry et al., 2018. "Towards Deep Learning Models Resistant to
          Adversarial Attacks". ICLR.
    """

    def __init__(self, mean, std, axis=-1, **kwargs):
        super().__init__(**kwargs)
        mean_array = _as_vector("mean", mean)
        std_array = _as_vector("std", std)
        if not np.all(np.isfinite(mean_array)):
            raise ValueError(
                f"Argument `mean` must hold finite values. Received: mean={mean!r}"
            )
        if not (np.all(np.isfinite(std_array)) and np.all(std_array > 0)):
            raise ValueError(
                "Argument `std` must hold finite, strictly positive values. "
                f"Received: std={std!r}"
            )
        if (
            mean_array.size > 1
            and std_array.size > 1
            and mean_array.size != std_array.size
        ):
            raise ValueError(
                "Arguments `mean` and `std` must have the same length (or one "
                f"of them a single value). Received: mean={mean!r}, std={std!r}"
            )
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise ValueError(
                f"Argument `axis` must be an integer. Received: axis={axis!r}"
            )
        self.mean = _to_config_value(mean_array)
        self.std = _to_config_value(std_array)
        self.axis = int(axis)
        self._mean_array = mean_array
        self._std_array = std_array
        self._mean_broadcast = None
        self._std_broadcast = None
        self.supports_masking = True

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"Argument `axis` is out of range for inputs of rank {rank} "
                f"(shape {tuple(input_shape)}). Received: axis={self.axis}"
            )
        axis = self.axis % rank
        channels = max(self._mean_array.size, self._std_array.size)
        dim = input_shape[axis]
        if channels > 1 and dim is not None and dim != channels:
            raise ValueError(
                f"`mean` and `std` hold {channels} values but the input has "
                f"{dim} channels along axis {self.axis} (input shape "
                f"{tuple(input_shape)}). Received: mean={self.mean!r}, "
                f"std={self.std!r}"
            )
        shape = [1] * rank
        shape[axis] = channels
        self._mean_broadcast = np.broadcast_to(self._mean_array, channels).reshape(
            shape
        )
        self._std_broadcast = np.broadcast_to(self._std_array, channels).reshape(shape)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.convert_to_tensor(self._mean_broadcast, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self._std_broadcast, dtype=self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "std": self.std, "axis": self.axis})
        return config

"""The interface every attack shares, and the gradient attack of FGSM and PGD."""

import copy
import numbers
import warnings
import weakref

import keras
import numpy as np
from keras import ops

from keras_robust import backend, classification
from keras_robust.validation import (
    Configurable,
    validate_bool,
    validate_choice,
    validate_integer,
    validate_number,
    validate_value_range,
)

NORMS = ("linf", "l2")
# Attacks of at most this many steps are unrolled at trace time: under XLA
# (TensorFlow's and JAX's, on a CPU) a while loop around a network's
# forward/backward pass ran about 4x slower than the unrolled steps
# (benchmarks/NOTES.md); longer attacks use a while loop to bound the graph
# size.
UNROLL_MAX_STEPS = 20
# Guards the L2 normalisation of a zero vector.
_TINY = 1e-12
# Settings passed to the compiled runner of `Attack.__call__` as scalar
# tensors, so attacks that differ only in them share one traced function.
DYNAMIC_SETTINGS = ("epsilon", "step_size")
# Model -> {settings key -> (seed generator, compiled batch function)}.
_RUNNERS = weakref.WeakKeyDictionary()
# Model -> {input shape -> compiled eval-mode forward pass}.
_FORWARDS = weakref.WeakKeyDictionary()
# Model -> {input shape -> compiled eval-mode input gradient}.
_GRADIENTS = weakref.WeakKeyDictionary()


def _weak_forward(model, training):
    """`model(inputs, training=training)` in float32, holding `model` weakly.

    The compiled functions cached per model call this: a function that held
    the model itself would keep the cache's (weak) key alive, and with it
    every model an attack or an evaluation ever ran on. (What a compiled
    function captures are the model's variables, not the model.)
    """
    reference = weakref.ref(model)

    def forward(inputs):
        return ops.cast(reference()(inputs, training=training), "float32")

    return forward


def _build(model, x):
    """Calls `model` once on an example of `x` if it has not been built.

    A compiled function takes the model's variables as they are when it is
    made (on JAX, as arguments): those of an unbuilt model do not exist yet,
    and the function would run on the first weights forever.
    """
    if not model.built:
        model(x[:1], training=False)


def _num_classes(model, x):
    """The number of logits `model` gives for inputs shaped like `x`'s.

    Found without running the built model (`backend.output_shape`): on
    JAX an eager call compiles every operation again for its batch size.
    """
    _build(model, x)
    return int(backend.output_shape(_weak_forward(model, training=False), x[:1])[-1])


def _cached_batch_function(cache, model, key, fn, *examples):
    """`cache[model][key]`, compiled from `fn` on first use (eval mode).

    `fn` runs on batches shaped like `examples`, each example on its own
    (`backend.compile_batch_function`); `model` is built first.
    """
    per_model = cache.setdefault(model, {})
    if key not in per_model:
        _build(model, examples[0])
        per_model[key] = backend.compile_batch_function(
            fn, *examples, variables=model.variables, independent_examples=True
        )
    return per_model[key]


def _in_batches(fn, batch_size, *arrays):
    """`fn`'s NumPy outputs on the arrays' batches, concatenated.

    The batches run in one `backend.padded_batches` scope (one compiled
    size on JAX); no examples make one empty batch.
    """
    count = len(arrays[0])
    starts = range(0, count, batch_size) if count else [0]
    with backend.padded_batches(batch_size, count):
        return np.concatenate(
            [
                ops.convert_to_numpy(fn(*(a[i : i + batch_size] for a in arrays)))
                for i in starts
            ]
        )


def is_zero(value):
    """Whether a setting is known to be zero at trace time (never a tensor)."""
    return isinstance(value, numbers.Real) and value == 0


def _flat_norm(x):
    """Euclidean norm of each example, shaped to broadcast against `x`."""
    squares = ops.sum(ops.square(ops.reshape(x, (ops.shape(x)[0], -1))), axis=-1)
    norm = ops.sqrt(squares)
    return ops.reshape(norm, (-1,) + (1,) * (len(x.shape) - 1))


def run_in_batches(
    batch_fn, model, x, y, value_range, batch_size, check_num_classes=None
):
    """Checks an attack's inputs, then runs `batch_fn` compiled, batch by batch.

    Args:
        batch_fn: `(x_batch, y_batch) -> x_adv_batch`, a compiled function.
        model: The attacked Keras model (used for the label check).
        x: Inputs, array-like `[N, ...]`, in `value_range`.
        y: Sparse labels `[N]` (or `[N, 1]`), or dense targets `[N, K]`.
        value_range: `(low, high)` of valid inputs.
        batch_size: Examples per compiled call, a positive integer.
        check_num_classes: Optional callable taking the model's number of
            classes, raising if the attack cannot run on it.

    Returns:
        NumPy float32 array of adversarial inputs, the shape of `x`.

    Raises:
        ValueError: For a bad `batch_size`, `len(x) != len(y)`, inputs
            outside `value_range` or labels outside the model's classes.
    """
    validate_integer("batch_size", batch_size)
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(
            "Arguments `x` and `y` must hold the same number of examples. "
            f"Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    if len(x) == 0:
        return x.copy()
    backend.check_in_value_range(x, value_range, name="x")
    num_classes = _num_classes(model, x)
    if check_num_classes is not None:
        check_num_classes(num_classes)
    if y.ndim == 1 or (y.ndim == 2 and y.shape[-1] == 1):
        backend.check_labels_in_range(y, num_classes, name="y")
    return _in_batches(batch_fn, batch_size, x, y)


def predict_logits(model, x, batch_size=256):
    """`model`'s eval-mode outputs on `x`, batched and compiled, float32 NumPy.

    What the evaluation runs on clean and adversarial inputs. The forward
    pass is compiled once per model and input shape, as the attacks are
    (`backend.compile_batch_function`), and reused across calls. On JAX a
    model called eagerly compiles each of its operations again for every
    new batch size, and the examples an evaluation attacks come in many;
    the compiled pass runs them padded (`backend.padded_batches`).

    Args:
        model: A Keras model.
        x: Inputs, array-like `[N, ...]`.
        batch_size: Examples per compiled call, a positive integer.

    Raises:
        ValueError: If `batch_size` is not a positive integer.
    """
    validate_integer("batch_size", batch_size)
    x = np.asarray(x, dtype="float32")
    forward = _cached_batch_function(
        _FORWARDS, model, x.shape[1:], _weak_forward(model, training=False), x
    )
    return _in_batches(forward, batch_size, x)


def input_gradients(model, x, labels, batch_size=256):
    """The gradient of each example's eval-mode cross-entropy by its input.

    What `evaluation.check_model` inspects for gradient masking. Compiled
    and cached per model and input shape like `predict_logits`: on JAX an
    eager gradient compiles each operation of the forward and backward
    passes on its own (1.0 s against 0.37 s compiled for the digits MLP
    on 256 images, benchmarks/NOTES.md).

    Args:
        model: A Keras model mapping inputs to logits.
        x: Inputs, array-like `[N, ...]`.
        labels: Class indices `[N]`.
        batch_size: Examples per compiled call, a positive integer.

    Returns:
        NumPy float32 array, the shape of `x`.

    Raises:
        ValueError: If `batch_size` is not a positive integer.
    """
    validate_integer("batch_size", batch_size)
    x = np.asarray(x, dtype="float32")
    labels = np.asarray(labels, dtype="int32")
    forward = _weak_forward(model, training=False)

    def gradient(x_batch, label_batch):
        def loss_fn(inputs):
            return classification.cross_entropy_with_logits(
                label_batch, forward(inputs)
            )

        return backend.value_and_input_gradient(loss_fn, x_batch)[1]

    compiled = _cached_batch_function(
        _GRADIENTS, model, x.shape[1:], gradient, x, labels
    )
    return _in_batches(compiled, batch_size, x, labels)


class Attack(Configurable):
    """Base class of every attack: configuration, and one way to run it.

    An attack holds configuration only (ε, norm, value range, its own
    loss); the model, the data and the random seed are given when it runs.
    Every attack runs in two ways, both with the same arguments:

    - inside a compiled function (a training or evaluation step):
      `x_adv = attack.perturb(model_fn, x, y, loss_fn=None, seed=None,
      start=None)`;
    - on any Keras model outside training, batched and compiled:
      `x_adv = attack(model, x, y, batch_size=256, seed=None,
      training=False)`, implemented once here on top of `perturb`.

    So any attack can be the training attack or the evaluation attack of
    `keras_robust.AdversarialModel`. A subclass implements `perturb` and
    `get_config`.

    Threat model: inputs in `value_range` (default `[0, 1]`, i.e. pixel
    units, so ε = 8/255 is the CIFAR budget); the result stays inside the
    ε-ball of `norm` around the clean input and inside `value_range`. The
    model must output logits.

    Args:
        epsilon: Radius of the ε-ball, `>= 0`, in input units.
        norm: `"linf"` or `"l2"`.
        value_range: `(low, high)` bounds of valid inputs.
    """

    # Whether the attack uses only the model's outputs (no gradients).
    black_box = False

    def __init__(self, *, epsilon, norm="linf", value_range=(0.0, 1.0)):
        self.epsilon = validate_number("epsilon", epsilon, low=0.0)
        self.norm = validate_choice("norm", norm, NORMS)
        self.value_range = validate_value_range(value_range)
        warn_if_epsilon_is_suspicious(self.epsilon, self.norm, self.value_range)

    def perturb(self, model_fn, x, y, *, loss_fn=None, seed=None, start=None):
        """Builds adversarial examples; usable inside a compiled function.

        Args:
            model_fn: Callable mapping inputs to float logits (set the
                train/eval mode in it, e.g. `lambda x: model(x,
                training=False)`).
            x: Clean inputs in `value_range`, float.
            y: Sparse labels `[N]` (or `[N, 1]`), or dense targets `[N, K]`
                whose arg-max is the true class; the attack's own loss is
                computed against them.
            loss_fn: Optional callable mapping logits `[N, K]` to the
                per-example loss `[N]` to maximise instead of the attack's
                own loss (a training objective's attack loss).
            seed: A `keras.random.SeedGenerator` (created outside the
                compiled function) or an int for the random draws.
            start: Optional starting point replacing the random start; it is
                projected onto the ε-ball and the range first.

        Returns:
            Adversarial inputs of the shape and dtype of `x`, with no
            gradient flowing back through them.
        """
        raise NotImplementedError

    def __call__(self, model, x, y, *, batch_size=256, seed=None, training=False):
        """Attacks `model` on `(x, y)` outside training, batched and compiled.

        Args:
            model: A Keras model mapping inputs in `value_range` to logits.
            x: Clean inputs, array-like `[N, ...]` in `value_range`.
            y: Sparse labels `[N]`, or one-hot / soft targets `[N, K]`.
            batch_size: Examples per compiled attack call.
            seed: Integer seed of the random draws (reproducible), or `None`.
            training: Run the model in train mode during the attack (BatchNorm
                batch statistics; note that Keras then also updates the
                moving statistics) instead of eval mode (default).

        Returns:
            NumPy array of adversarial inputs, the shape of `x`, float32.

        Raises:
            ValueError: If `x` falls outside `value_range`, `y` does not match
                the model's outputs, or `batch_size` is not a positive integer.
        """
        validate_bool("training", training)
        x = np.asarray(x, dtype="float32")
        self.check_inputs(x)
        y = np.asarray(y)
        seed_generator, run_batch = self._runner(model, bool(training), x, y)
        # The same random draws as a fresh `SeedGenerator(seed)` would make.
        seed_generator.state.assign(keras.random.SeedGenerator(seed).state.value)
        return run_in_batches(
            run_batch,
            model,
            x,
            y,
            self.value_range,
            batch_size,
            check_num_classes=self.check_num_classes,
        )

    def _runner(self, model, training, x, y):
        """The compiled batch function for `model`, reused across calls.

        It is traced once for any batch size, and shared by every attack of
        the same class and settings except `epsilon` and `step_size`, which
        it takes as tensors: calling an attack again on the same model (with
        the same input shapes), or a copy at another ε as in a robustness
        curve, runs it again instead of tracing a new one.

        Returns:
            `(seed_generator, run_batch)`: `run_batch(x_batch, y_batch)` runs
            the attack with this attack's `epsilon` and `step_size`.
        """
        seed_generator, compiled, settings = self._compile(
            model,
            training,
            x,
            y,
            "perturb",
            lambda attack, model_fn, xb, yb, seed, extra: attack.perturb(
                model_fn, xb, yb, seed=seed
            ),
        )
        return seed_generator, lambda xb, yb: compiled(xb, yb, settings)

    def _compile(self, model, training, x, y, name, body, extra_scalars=0, inputs=()):
        """A compiled batch function of this attack on `model`, cached.

        Args:
            model, training, x, y: As in `_runner`.
            name: Names the function among those of the attack.
            body: `(attack, model_fn, x_batch, y_batch, seed_generator,
                extra) -> outputs`, traced once; `attack` is a copy of this
                attack whose `epsilon` and `step_size` are scalar tensors,
                `extra` the list of the `extra_scalars` further scalars.
            extra_scalars: Further float32 scalars the function takes.
            inputs: Names of settings that `body` receives through `extra`
                and never reads from `attack`: they are left out of the
                cache key, so attacks that differ only in them share the
                function.

        Returns:
            `(seed_generator, compiled, settings)`: call
            `compiled(x_batch, y_batch, settings + extra)`.
        """
        config = self.get_config()
        for setting in inputs:
            del config[setting]
        dynamic = [name for name in DYNAMIC_SETTINGS if name in config]
        values = [float(config.pop(name)) for name in dynamic]
        shapes = (x.shape[1:], x.dtype.str, y.shape[1:], y.dtype.str)
        key = (type(self), name, training, shapes, repr(config))
        per_model = _RUNNERS.setdefault(model, {})
        if key not in per_model:
            _build(model, x)
            seed_generator = keras.random.SeedGenerator(0)
            template = copy.copy(self)

            model_fn = _weak_forward(model, training)

            def run(xb, yb, scalars):
                attack = copy.copy(template)
                for setting, value in zip(dynamic, scalars, strict=False):
                    setattr(attack, setting, value)
                extra = list(scalars[len(dynamic) :])
                return body(attack, model_fn, xb, yb, seed_generator, extra)

            compiled = backend.compile_batch_function(
                run,
                x,
                y,
                scalars=len(dynamic) + extra_scalars,
                variables=[*model.variables, seed_generator.state],
                # In train mode, batch statistics couple the examples.
                independent_examples=not training,
            )
            per_model[key] = (seed_generator, compiled)
        seed_generator, compiled = per_model[key]
        return seed_generator, compiled, [np.float32(value) for value in values]

    def check_inputs(self, x):
        """Checks a NumPy batch before the attack runs (e.g. its rank)."""

    def check_num_classes(self, num_classes):
        """Checks that the attack can run on a model with `num_classes` logits."""

    def projection(self, x):
        """`project` onto the ball around a fixed `x`, for an attack's loop.

        For L∞ the bounds `max(x − ε, low)` and `min(x + ε, high)` are
        computed once, outside the loop, and each projection is one clip
        (clipping to the ball and then to the range is clipping to their
        intersection, so the result is the same).
        """
        if self.norm != "linf":
            return lambda x_adv: self.project(x_adv, x)
        low, high = self.value_range
        lower = ops.maximum(x - self.epsilon, low)
        upper = ops.minimum(x + self.epsilon, high)
        return lambda x_adv: ops.clip(x_adv, lower, upper)

    def project(self, x_adv, x):
        """Projects `x_adv` onto the ε-ball around `x` and into the range."""
        if self.norm == "linf":
            x_adv = ops.clip(x_adv, x - self.epsilon, x + self.epsilon)
        else:
            delta = x_adv - x
            scale = ops.minimum(
                1.0, self.epsilon / ops.maximum(_flat_norm(delta), _TINY)
            )
            x_adv = x + delta * scale
        return ops.clip(x_adv, *self.value_range)

    def get_config(self):
        return {
            "epsilon": self.epsilon,
            "norm": self.norm,
            "value_range": list(self.value_range),
        }


def warn_if_epsilon_is_suspicious(epsilon, norm, value_range):
    """Warns when an L∞ ε exceeds half the width of `value_range`.

    Such a budget lets the attack move most inputs anywhere in the range,
    so robust accuracy drops to about 0. It is legal, but usually means an
    ε in 0–255 pixel units for inputs in [0, 1] (`8` for `8/255`).
    """
    low, high = value_range
    width = high - low
    if norm != "linf" or epsilon <= width / 2:
        return
    hint = ""
    if epsilon >= 1 and width <= 1:
        hint = (
            f" If ε is in 0-255 pixel units, the budget for inputs in "
            f"{tuple(value_range)} is epsilon={epsilon:g}/255 = {epsilon / 255:.4g}."
        )
    warnings.warn(
        f"An L-inf epsilon={epsilon:g} is more than half the width of "
        f"value_range={tuple(value_range)}: the attack can move inputs almost "
        f"anywhere, and robust accuracy will be about 0.{hint}",
        UserWarning,
        stacklevel=4,
    )


def keep_first_fooled(model_fn, y, x_best, x_new):
    """Per example, `x_best` where it already fools the model, else `x_new`.

    Used to combine restarts: each example keeps its first misclassified
    point.
    """
    fooled = classification.correct(model_fn(x_best), y) < 0.5
    return backend.select(fooled, x_best, x_new)


class GradientAttack(Attack):
    """Projected gradient ascent on a loss, inside an ε-ball and a value range.

    The subclasses `PGD` and `FGSM` only choose defaults; `APGD` changes
    the update. See `Attack` for the interface and the threat model.

    Args:
        epsilon: Radius of the ε-ball, `>= 0`, in input units.
        step_size: Step length of each ascent step, `> 0`.
        steps: Number of ascent steps, `>= 1`.
        norm: `"linf"` (steps along the gradient's sign) or `"l2"` (steps
            along the L2-normalised gradient).
        random_start: Start from a uniformly random point of the ε-ball
            (L∞: `x + U(-ε, ε)`; L2: uniform in the ball) instead of `x`.
        value_range: `(low, high)` bounds of valid inputs.
        restarts: Runs from new random starts; each example keeps its first
            misclassified point. Needs `random_start=True` when `> 1`.
    """

    def __init__(
        self,
        *,
        epsilon,
        step_size,
        steps,
        norm="linf",
        random_start=True,
        value_range=(0.0, 1.0),
        restarts=1,
    ):
        super().__init__(epsilon=epsilon, norm=norm, value_range=value_range)
        self.step_size = validate_number("step_size", step_size, low=0.0, low_open=True)
        self.steps = validate_integer("steps", steps)
        self.random_start = validate_bool("random_start", random_start)
        self.restarts = validate_integer("restarts", restarts)
        if self.restarts > 1 and not self.random_start:
            raise ValueError(
                "Argument `restarts` above 1 needs `random_start=True` (every run "
                f"would start from the same point). Received: restarts={restarts!r}"
            )

    # --- the three norm-specific pieces -------------------------------------

    def random_delta(self, x, seed):
        """A uniformly random perturbation inside the ε-ball."""
        if self.norm == "linf":
            return backend.random.uniform(
                ops.shape(x), -self.epsilon, self.epsilon, dtype=x.dtype, seed=seed
            )
        direction = backend.random.normal(ops.shape(x), dtype=x.dtype, seed=seed)
        direction = direction / ops.maximum(_flat_norm(direction), _TINY)
        dims = int(np.prod(x.shape[1:]))
        # An integer seed draws statelessly: offset it for an independent draw.
        radius_seed = seed + 1 if isinstance(seed, int) else seed
        radius = backend.random.uniform(
            (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1),
            dtype=x.dtype,
            seed=radius_seed,
        )
        return direction * self.epsilon * radius ** (1.0 / dims)

    def ascent_direction(self, gradient):
        """The steepest-ascent direction of unit norm for the threat model."""
        if self.norm == "linf":
            return ops.sign(gradient)
        return gradient / ops.maximum(_flat_norm(gradient), _TINY)

    # --- running the attack ---------------------------------------------------

    def loss_fn(self, y):
        """The attack's own per-example loss against `y`: the cross-entropy.

        Subclasses may choose another loss.
        """
        return lambda logits: classification.cross_entropy_with_logits(y, logits)

    def perturb(self, model_fn, x, y, *, loss_fn=None, seed=None, start=None):
        x = ops.stop_gradient(x)
        loss_fn = loss_fn or self.loss_fn(y)
        x_best = None
        for _ in range(self.restarts):
            x_adv = self._ascend(model_fn, x, loss_fn, seed, start)
            if x_best is None:
                x_best = x_adv
            else:
                x_best = keep_first_fooled(model_fn, y, x_best, x_adv)
            # Only the first run starts from a given starting point.
            start = None
        return ops.stop_gradient(x_best)

    perturb.__doc__ = Attack.perturb.__doc__

    def _ascend(self, model_fn, x, loss_fn, seed, start):
        """One run of projected gradient ascent from a (random) start."""
        if start is not None:
            x_adv = self.project(start, x)
        elif self.random_start and not is_zero(self.epsilon):
            x_adv = self.project(x + self.random_delta(x, seed), x)
        else:
            x_adv = x

        def objective(inputs):
            return loss_fn(model_fn(inputs))

        def step(_, x_adv):
            _, gradient = backend.value_and_input_gradient(objective, x_adv)
            x_adv = x_adv + self.step_size * self.ascent_direction(gradient)
            return self.project(x_adv, x)

        if self.steps <= UNROLL_MAX_STEPS:
            for i in range(self.steps):
                x_adv = step(i, x_adv)
        else:
            x_adv = backend.fori_loop(0, self.steps, step, x_adv)
        return x_adv

    def get_config(self):
        # In the order of the constructor's arguments.
        return {
            "epsilon": self.epsilon,
            "step_size": self.step_size,
            "steps": self.steps,
            "norm": self.norm,
            "random_start": self.random_start,
            "value_range": list(self.value_range),
            "restarts": self.restarts,
        }

"""The Square Attack (Andriushchenko et al. 2020), a score-based black-box attack."""

import keras
import numpy as np
from keras import ops

from keras_robust import backend
from keras_robust.attacks.base import Attack
from keras_robust.classification import class_one_hot
from keras_robust.validation import validate_choice, validate_integer, validate_number

LOSSES = ("margin", "ce")
# The reference schedule halves p after these iterations of a 10,000-query
# budget; other budgets are mapped onto it linearly.
SCHEDULE_ITERATIONS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
SCHEDULE_BUDGET = 10_000
# A window counts as unchanged when no value moves by more than this.
_CHANGE_TOLERANCE = 1e-7


def p_schedule(p_init, iteration, queries):
    """The fraction of the pixels a square covers at an iteration.

    The piecewise-constant schedule of the reference code: `p_init`, halved
    after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of a
    10,000-query budget, the iteration being rescaled to the actual budget
    (`int(iteration / queries * 10000)`).

    Args:
        p_init: Initial fraction, in `(0, 1]`.
        iteration: Iteration index (int or integer array), from 0.
        queries: The query budget.

    Returns:
        `p` as a float, or a float64 array for an array of iterations.
    """
    iteration = np.asarray(iteration)
    rescaled = np.floor(iteration / queries * SCHEDULE_BUDGET).astype(np.int64)
    halvings = np.searchsorted(SCHEDULE_ITERATIONS, rescaled, side="left")
    p = p_init / 2.0**halvings
    return float(p) if p.ndim == 0 else p


def square_side(p, height, width, channels):
    """The side of the square window covering a fraction `p` of the pixels.

    `max(round(sqrt(p * n_features / channels)), 1)` with
    `n_features = height * width * channels` (rounding half to even, like
    Python's `round`), at most `min(height, width)` so that it fits.

    Returns:
        The side as an int, or an int64 array for an array of `p`.
    """
    n_features = height * width * channels
    side = np.round(np.sqrt(np.asarray(p, dtype="float64") * n_features / channels))
    side = np.clip(side, 1, min(height, width)).astype(np.int64)
    return int(side) if side.ndim == 0 else side


def choose_signs(first_up, flip_uniform, up_stays, down_stays):
    """The sign vector of a window: a first draw, redrawn if it changes nothing.

    Setting a window to `x_up` leaves channel `k` unchanged where the window
    is all at `x_up` in it (`up_stays[:, k]`), likewise `x_down`
    (`down_stays`). So only the window's own state, when it is uniform in
    every channel, changes nothing, and at most one of the `2^c` sign
    vectors is rejected. The reference code redraws until the window
    changes; that is the first draw, kept unless it is that vector, else
    that vector with a uniformly drawn non-empty set of channels flipped
    (uniform over the other `2^c − 1` vectors).

    Args:
        first_up: Boolean `[N, c]`, the first draw (`True`: `x_up`).
        flip_uniform: `[N]` uniform draws in `[0, 1)` choosing the flips.
        up_stays: Boolean `[N, c]`, `x_up` leaves the channel unchanged.
        down_stays: Boolean `[N, c]`, `x_down` leaves the channel unchanged.

    Returns:
        Boolean `[N, c]`, `True` where the channel is set to `x_up`.
    """
    channels = first_up.shape[-1]
    unchanged = ops.all(ops.where(first_up, up_stays, down_stays), axis=1)
    if channels == 1:
        # The one other vector: the single channel flipped.
        return ops.not_equal(first_up, unchanged[:, None])
    # A non-zero c-bit integer, then its bits: the channels to flip.
    flips = 1 + ops.cast(ops.floor(flip_uniform * (2**channels - 1)), "int32")
    bits = ops.convert_to_tensor(2 ** np.arange(channels), dtype="int32")
    flip = ops.not_equal((flips[:, None] // bits) % 2, 0)
    return ops.not_equal(first_up, flip & unchanged[:, None])


def _corners(side, uniform, height, width):
    """The top row and left column `[N, 2]` of a random square window.

    `uniform`: `[N, 2]` draws in `[0, 1)`; each of the `(h − s + 1)(w − s + 1)`
    placements is equally likely.
    """
    last = ops.stack([height - side, width - side])
    # The draws are non-negative: the cast truncates, i.e. floors.
    corner = ops.cast(uniform * ops.cast(last + 1, "float32"), "int32")
    return ops.minimum(corner, last)


def _signs(uniform, up_stays, down_stays):
    """The window's sign vector `[N, c]` (`True`: `x_up`) from its draws."""
    channels = up_stays.shape[-1]
    return choose_signs(
        uniform[:, 3 : 3 + channels] >= 0.5, uniform[:, 2], up_stays, down_stays
    )


def _window_proposals(x_up, x_down):
    """Square proposals that read and write only the window's values.

    The loop carries the images flat, `[N, h·w·c]`. A proposal gathers the
    window's values `[N, s, s·c]` by their flat indices, chooses the signs,
    and scatters the new values into a copy of the images, so its cost
    beyond that copy grows with the window, not the image (most of the
    schedule's windows are a few pixels). The window's shape changes with
    the schedule, which XLA does not compile: see `_dense_proposals`.

    Everything that does not change from one iteration to the next (the
    offsets of a window's values from its corner, the shapes) is computed
    once, outside the loop: a proposal runs about 40 small operations, and
    on a small model scheduling an operation costs about as much as its
    arithmetic.

    Args:
        x_up, x_down: The images at the top and bottom of the ε-ball (and
            the range), `[N, h, w, c]`.

    Returns:
        `(layout, propose)`: the loop's shape of the images, and
        `propose(x_best, side, uniform)`, the candidate in that shape for a
        window of `side` placed and signed by `uniform` `[N, 3 + c]`.
    """
    height, width, channels = x_up.shape[1:]
    batch = ops.shape(x_up)[0]
    row_size = width * channels
    image_size = height * row_size
    x_up = ops.reshape(x_up, (-1,))
    x_down = ops.reshape(x_down, (-1,))
    # int64: a batch may hold more than 2^31 values, an image does not.
    first_values = ops.arange(batch, dtype="int64") * image_size
    # The flat offset of value (r, p) of a window from its corner, for the
    # largest window; a window of side s reads the block [:s, :s·c].
    offsets = ops.convert_to_tensor(
        np.arange(height, dtype="int64")[:, None] * row_size
        + np.arange(row_size, dtype="int64")[None, :]
    )
    corner_strides = ops.convert_to_tensor([row_size, channels], dtype="int32")
    by_channel = ops.stack([batch, -1, channels])
    by_window = ops.stack([batch, 1, 1])
    images = ops.stack([batch, image_size])

    def propose(x_best, side, uniform):
        corner = _corners(side, uniform[:, :2], height, width)
        corner_value = ops.sum(corner * corner_strides, axis=1)
        start = first_values + ops.cast(corner_value, "int64")
        window = ops.slice(offsets, (0, 0), ops.stack([side, side * channels]))
        # Flat indices of the window's values, `[N, s, s·c]`.
        index = ops.reshape(start, by_window) + window
        flat = ops.reshape(x_best, (-1,))
        values = backend.gather(flat, index)
        up_values = backend.gather(x_up, index)
        down_values = backend.gather(x_down, index)

        def stays(unchanged):
            """Whether no value of each channel changes, `[N, c]`."""
            return ops.all(ops.reshape(unchanged, by_channel), axis=1)

        # Every point of the search lies between x_down and x_up: setting a
        # value to x_up changes it where it is below x_up, likewise x_down.
        up = _signs(
            uniform,
            stays(values >= up_values - _CHANGE_TOLERANCE),
            stays(values <= down_values + _CHANGE_TOLERANCE),
        )
        # The channel of position p is p mod c: tile the signs along the side.
        up = ops.tile(up, (1, side))[:, None, :]
        new_values = ops.where(up, up_values, down_values)
        candidate = ops.scatter_update(flat, index[..., None], new_values)
        return ops.reshape(candidate, images)

    return (-1, height * width * channels), propose


def _dense_proposals(x_up, x_down):
    """Square proposals computed over the whole image, for XLA.

    As `_window_proposals`, with every shape fixed: the loop carries the
    images as `[N, h, w·c]`, a window is a band of rows times a contiguous
    band of `w·c` positions, and every image-sized select has a condition
    of the full shape (TensorFlow's CPU select ran up to 30x slower
    broadcasting its condition).
    """
    height, width, channels = x_up.shape[1:]
    batch = ops.shape(x_up)[0]
    layout = (-1, height, width * channels)
    x_up = ops.reshape(x_up, layout)
    x_down = ops.reshape(x_down, layout)
    rows = ops.arange(height, dtype="int32")[None, :]
    positions = ops.arange(width * channels, dtype="int32")[None, :]
    below_up = x_up - _CHANGE_TOLERANCE
    above_down = x_down + _CHANGE_TOLERANCE

    def changes(window, moved):
        """Whether a window changes each channel, `[N, c]`, from `moved`."""
        moved = ops.any(window & moved, axis=1)
        return ops.any(ops.reshape(moved, (batch, width, channels)), axis=1)

    def propose(x_best, side, uniform):
        corner = _corners(side, uniform[:, :2], height, width)
        top, left = corner[:, :1], corner[:, 1:] * channels
        in_rows = ((rows >= top) & (rows < top + side))[:, :, None]
        in_positions = (positions >= left) & (positions < left + side * channels)
        window = in_rows & in_positions[:, None, :]
        up = _signs(
            uniform,
            ~changes(window, x_best < below_up),
            ~changes(window, x_best > above_down),
        )
        # The channel of position p is p mod c: tile the signs along w.
        up = ops.tile(up, (1, width))
        up_window = in_rows & (in_positions & up)[:, None, :]
        down_window = in_rows & (in_positions & ~up)[:, None, :]
        return backend.select(
            up_window, x_up, backend.select(down_window, x_down, x_best)
        )

    return layout, propose


@keras.saving.register_keras_serializable(package="keras_robust")
class Square(Attack):
    """The L∞ Square Attack, a score-based black-box attack by random search.

    Threat model: images `[N, height, width, channels]` (channels last) with
    values in `value_range` (default `[0, 1]`, so ε = 8/255 is the CIFAR
    budget); the adversarial image stays inside the L∞ ε-ball around the
    clean image and inside `value_range`. The model must output logits. The
    attack is black-box: it queries only the model's outputs, never its
    gradients, so gradient masking (non-differentiable or
    zero-gradient layers) does not stop it. In a robustness evaluation it
    checks that a white-box attack's success is not an artefact of its
    gradients (AutoAttack runs it with 5,000 queries).

    Algorithm: start from vertical stripes, `x + ε·s` with a random sign
    `s ∈ {−1, +1}` for each column and channel, clipped to `value_range`.
    Then, at each iteration `i`, choose a square window of side
    `max(round(sqrt(p_i · height · width)), 1)` (at most
    `min(height, width)`) at a position drawn uniformly among all its
    placements, as in the paper (the reference code's `randint(0, h − s)`
    leaves out the last one, so that its squares never cover the last row
    and column); set the window to `x ± ε` with one random sign per channel
    (redrawn if the window would not change); keep the candidate only if it
    lowers the loss or fools the model. `p_i` follows the reference
    schedule (see `p_schedule`): `p_init`, halved at iterations 10, 50,
    200, 500, 1000, 2000, 4000, 6000 and 8000 of a 10,000-query budget,
    rescaled to `queries`. The loss, minimised, is the margin
    `z_y − max_{k≠y} z_k` of the logits `z` (or `log p_y` with
    `loss="ce"`); an example is fooled once its margin is negative, and
    from then on keeps its adversarial image and stops querying. Examples
    the model already misclassifies are returned unchanged. The batch is
    processed at once: every example draws its own windows and signs,
    fooled examples are masked, and the loop ends early once all examples
    are fooled.

    Args:
        epsilon: Radius of the L∞ ball, `>= 0`, in input units. Default
            8/255.
        queries: Query budget per example, an integer `>= 1`, including the
            query of the initial stripes. Default 5000.
        p_init: Initial fraction of the pixels changed by a square, in
            `(0, 1]`. Default 0.8, AutoAttack's value.
        value_range: `(low, high)` bounds of valid inputs. Default `(0, 1)`.
        loss: `"margin"` (default) or `"ce"` (the log-probability of the true
            class).

    Raises:
        ValueError: For `epsilon < 0`, `queries` not an integer `>= 1`,
            `p_init` outside `(0, 1]`, an invalid `value_range` or an
            unknown `loss`.

    Example:

    >>> import keras, numpy as np, keras_robust as kr
    >>> model = keras.Sequential(
    ...     [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    ... )
    >>> x = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")
    >>> y = np.arange(16) % 3
    >>> attack = kr.attacks.Square(epsilon=0.1, queries=100)
    >>> x_adv = attack(model, x, y, seed=0)
    >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
    True

    References:
        Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a
        query-efficient black-box adversarial attack via random search",
        ECCV 2020.
        Croce and Hein, "Reliable evaluation of adversarial robustness with
        an ensemble of diverse parameter-free attacks", ICML 2020.
    """

    # Uses only the model's outputs (see evaluation.check_black_box).
    black_box = True

    def __init__(
        self,
        epsilon=8 / 255,
        queries=5000,
        p_init=0.8,
        value_range=(0.0, 1.0),
        loss="margin",
    ):
        super().__init__(epsilon=epsilon, norm="linf", value_range=value_range)
        self.queries = validate_integer("queries", queries)
        self.p_init = validate_number("p_init", p_init, low=0.0, low_open=True, high=1)
        self.loss = validate_choice("loss", loss, LOSSES)

    def square_sides(self, height, width, channels):
        """The square side at each iteration after the first query, `[queries - 1]`."""
        p = p_schedule(self.p_init, np.arange(self.queries - 1), self.queries)
        return square_side(p, height, width, channels)

    def perturb(self, model_fn, x, y, *, loss_fn=None, seed=None, start=None):
        """Builds adversarial examples; usable inside a compiled function.

        Args:
            model_fn: Callable mapping images to logits (set the mode in it,
                e.g. `lambda x: model(x, training=False)`).
            x: Clean images `[N, height, width, channels]` in `value_range`,
                float.
            y: Sparse labels `[N]` (or `[N, 1]`), or dense targets `[N, K]`
                whose arg-max is the true class.
            loss_fn: Optional callable mapping logits `[N, K]` to a
                per-example loss `[N]` that the search maximises instead of
                its own (a training objective's attack loss); an example
                still stops once the model misclassifies it.
            seed: A `keras.random.SeedGenerator` for the random search,
                created outside the compiled function; an int only when
                called eagerly.
            start: Optional starting point replacing the initial stripes; it
                is projected onto the ε-ball and the range first.

        Returns:
            Adversarial images of the shape and dtype of `x`, with no
            gradient flowing back through them.

        Raises:
            ValueError: If `x` is not of rank 4 with known height, width and
                channels, or `seed` is an int inside a compiled function.
        """
        x = ops.stop_gradient(x)
        if len(x.shape) != 4 or any(d is None for d in x.shape[1:]):
            raise ValueError(
                "Argument `x` must be a batch of images [N, height, width, "
                f"channels] with known image dimensions. Received: x.shape={x.shape}"
            )
        if isinstance(seed, int | np.integer):
            if backend.concrete_values(x) is None:
                raise ValueError(
                    "Argument `seed` must be a keras.random.SeedGenerator created "
                    "outside the compiled function: an integer seed cannot create "
                    f"its generator inside it. Received: seed={seed!r}"
                )
            seed = keras.random.SeedGenerator(int(seed))
        height, width, channels = x.shape[1:]
        batch = ops.shape(x)[0]
        low, high = self.value_range
        epsilon = ops.cast(self.epsilon, x.dtype)

        clean_logits = ops.cast(model_fn(x), "float32")
        one_hot = class_one_hot(y, clean_logits)
        # Added to the logits, this leaves the wrong classes' and sends the
        # true class's to -inf: the best wrong logit is a max (the same
        # value as `classification.margin`'s, in two operations fewer).
        true_class_out = ops.cast(ops.where(one_hot > 0, -np.inf, 0.0), "float32")

        def margin_and_loss(logits):
            """The margin (< 0: fooled) and the loss the search minimises."""
            logits = ops.cast(logits, "float32")
            example_margin = ops.sum(one_hot * logits, axis=-1) - ops.max(
                logits + true_class_out, axis=-1
            )
            if loss_fn is not None:
                return example_margin, -ops.cast(loss_fn(logits), "float32")
            if self.loss == "margin":
                return example_margin, example_margin
            log_probs = ops.log_softmax(logits, axis=-1)
            return example_margin, ops.sum(one_hot * log_probs, axis=-1)

        def random_signs(shape):
            uniform = backend.random.uniform(shape, seed=seed)
            return ops.where(uniform < 0.5, -1.0, 1.0)

        # Examples misclassified already are left as they are.
        clean_margin, _ = margin_and_loss(clean_logits)
        attacked = clean_margin >= 0
        if start is None:
            stripes = ops.cast(random_signs((batch, 1, width, channels)), x.dtype)
            x_init = ops.clip(x + epsilon * stripes, low, high)
        else:
            x_init = self.project(start, x)
        init_margin, loss_min = margin_and_loss(model_fn(x_init))
        x_best = ops.where(attacked[:, None, None, None], x_init, x)
        margin_min = ops.where(attacked, init_margin, clean_margin)
        if self.queries == 1:
            return ops.stop_gradient(x_best)

        sides = ops.convert_to_tensor(
            self.square_sides(height, width, channels), dtype="int32"
        )
        x_up = ops.clip(x + epsilon, low, high)
        x_down = ops.clip(x - epsilon, low, high)
        if backend.in_xla_context():
            layout, propose = _dense_proposals(x_up, x_down)
        else:
            layout, propose = _window_proposals(x_up, x_down)
        # One key for the loop; each iteration folds its index into it and
        # draws its window corner and sign vectors at once.
        loop_key = backend.random.key(seed)

        def condition(i, x_best, margin_min, loss_min):
            return (i < self.queries - 1) & ops.any(margin_min >= 0)

        def body(i, x_best, margin_min, loss_min):
            active = margin_min >= 0
            uniform = backend.random.uniform_from_key(
                (batch, 3 + channels),
                backend.random.fold_in(loop_key, i),
            )
            candidate = propose(x_best, backend.gather(sides, i), uniform)
            margin, loss = margin_and_loss(
                model_fn(ops.reshape(candidate, (-1, height, width, channels)))
            )
            improved = active & (loss < loss_min)
            accepted = improved | (active & (margin < 0))
            loss_min = ops.where(improved, loss, loss_min)
            margin_min = ops.where(accepted, margin, margin_min)
            x_best = backend.select(accepted, candidate, x_best)
            return i + 1, x_best, margin_min, loss_min

        _, x_best, _, _ = backend.while_loop(
            condition,
            body,
            (
                ops.convert_to_tensor(0, "int32"),
                ops.reshape(x_best, layout),
                margin_min,
                loss_min,
            ),
        )
        return ops.stop_gradient(ops.reshape(x_best, ops.shape(x)))

    def check_inputs(self, x):
        if x.ndim != 4:
            raise ValueError(
                "Argument `x` must be a batch of images [N, height, width, "
                f"channels]. Received: x.shape={x.shape}"
            )

    def get_config(self):
        # Always L∞: no `norm`.
        return {
            "epsilon": self.epsilon,
            "queries": self.queries,
            "p_init": self.p_init,
            "value_range": list(self.value_range),
            "loss": self.loss,
        }

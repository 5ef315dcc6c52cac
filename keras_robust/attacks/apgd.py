"""Auto-PGD (Croce & Hein 2020): PGD with momentum and an adaptive step size."""

import keras
import numpy as np
from keras import ops

from keras_robust import backend
from keras_robust.attacks.base import UNROLL_MAX_STEPS, GradientAttack, is_zero
from keras_robust.attacks.losses import DLR_EPSILON
from keras_robust.classification import class_indices, class_one_hot
from keras_robust.validation import (
    validate_bool,
    validate_choice,
    validate_integer,
    validate_number,
)

LOSSES = ("ce", "dlr")
# Guards the normalisation of the random start, as in the reference code.
_TINY = 1e-12


def apgd_checkpoints(steps):
    """The iterations `0 = w_0 < w_1 < ... <= steps` where APGD checks progress.

    `w_j = ceil(p_j * steps)` with `p_0 = 0`, `p_1 = 0.22` and
    `p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`: the periods between
    checkpoints shrink from 22% of the budget to at least 6%. Checkpoints
    that coincide for small `steps` are listed once.

    Args:
        steps: The number of iterations, `>= 1`.

    Returns:
        A list of ints starting with 0.
    """
    # The p_j in hundredths, so that the ceiling is exact.
    previous, current = 0, 22
    points = [0]
    while True:
        point = -(-current * steps // 100)
        if point > steps:
            return points
        if point > points[-1]:
            points.append(point)
        previous, current = current, current + max(current - previous - 3, 6)


# The losses of APGD, by index: a compiled run takes the index as an input.
_RUN_LOSSES = ("ce", "dlr", "dlr-t")


def _loss_and_gradient(logits, one_hot, kind, target_mask=None):
    """Each example's loss `_RUN_LOSSES[kind]`, its gradient by the logits, the
    predicted class.

    The cross-entropy `−Σ_k y_k log softmax(z)_k` has the gradient
    `softmax(z) − y`. The DLR losses are `−(z_y − z_o) / D` with
    `D = z_π1 − a (z_π3 + b z_π4) + 1e-12`, `π` ordering the logits
    decreasingly: `z_o` the best other logit and `(a, b) = (1, 0)` for the
    DLR loss, `z_o = z_t` (the target class) and `(a, b) = (1/2, 1)` for the
    targeted one. Their gradient is `((e_o − e_y) − DLR · ∂D/∂z) / D` with
    `∂D/∂z = e_π1 − a (e_π3 + b e_π4)` and `e_k` the one-hot of class `k`:
    as in the reference code, which sorts, each rank's gradient goes to one
    class (ties are not split). The values are `cross_entropy_loss`'s,
    `dlr_loss`'s and `targeted_dlr_loss`'s, from the same operations.

    Args:
        logits: float32 `[N, K]`.
        one_hot: One-hot true classes `[N, K]`.
        kind: A Python int, or an int32 scalar tensor choosing the loss at
            run time (with `target_mask`, among all three).
        target_mask: One-hot target classes `[N, K]` of the targeted loss,
            or `None` (no targeted loss).

    Returns:
        `(loss, gradient, predicted)`: float32 `[N]`, float32 `[N, K]` and
        the arg-max class, int32 `[N]`.
    """
    num_classes = logits.shape[-1]
    static = isinstance(kind, int)
    log_probs = ops.log_softmax(logits, axis=-1)
    cross_entropy = -ops.sum(one_hot * log_probs, axis=-1)
    cross_entropy_gradient = ops.exp(log_probs) - one_hot
    cross_entropy_only = (static and kind == 0) or num_classes < 3
    count = 1 if cross_entropy_only else 3 if target_mask is None else 4
    # Sorted top-k lists equal values lowest class first: the first class
    # is the arg-max.
    top, top_classes = ops.top_k(logits, k=count, sorted=True)
    predicted = ops.cast(top_classes[:, 0], "int32")
    if cross_entropy_only:
        return cross_entropy, cross_entropy_gradient, predicted
    ranks = ops.one_hot(top_classes, num_classes, dtype="float32")
    true_logit = ops.sum(one_hot * logits, axis=-1)
    # The best other class is the first of the ranking unless it is the
    # true class, then the second.
    true_is_top = ops.sum(one_hot * ranks[:, 0], axis=-1) > 0
    other = ops.where(true_is_top, top[:, 1], top[:, 0])
    other_mask = backend.select(true_is_top, ranks[:, 1], ranks[:, 0])
    if target_mask is None:
        scale = top[:, 0] - top[:, 2] + DLR_EPSILON
        scale_gradient = ranks[:, 0] - ranks[:, 2]
    else:
        targeted = kind == 2
        target_logit = ops.sum(target_mask * logits, axis=-1)
        if static:
            other, other_mask = target_logit, target_mask
            half, fourth = 0.5, 1.0
        else:
            other = ops.where(targeted, target_logit, other)
            other_mask = backend.select(targeted, target_mask, other_mask)
            half = ops.where(targeted, 0.5, 1.0)
            fourth = ops.where(targeted, 1.0, 0.0)
        scale = top[:, 0] - half * (top[:, 2] + fourth * top[:, 3]) + DLR_EPSILON
        scale_gradient = ranks[:, 0] - half * (ranks[:, 2] + fourth * ranks[:, 3])
    dlr = -(true_logit - other) / scale
    dlr_gradient = (other_mask - one_hot - dlr[:, None] * scale_gradient) / scale[
        :, None
    ]
    if static:
        return dlr, dlr_gradient, predicted
    chosen = kind == 0
    return (
        ops.where(chosen, cross_entropy, dlr),
        backend.select(chosen, cross_entropy_gradient, dlr_gradient),
        predicted,
    )


def _target_mask(prepared, rank):
    """One-hot `[N, K]` of each example's target class of rank `rank` (an int
    or an int32 scalar tensor) among `prepared["target_classes"]`, or `None`
    where no target classes were ranked."""
    if prepared["target_classes"] is None:
        return None
    target = ops.take(prepared["target_classes"], rank, axis=1)
    return ops.one_hot(target, prepared["targets"].shape[-1], dtype="float32")


def _per_example(values, x):
    """Reshapes `[N]` values to broadcast against `x` `[N, ...]`."""
    return ops.reshape(values, (-1,) + (1,) * (len(x.shape) - 1))


def _flat_reduce(reduce, x):
    flat = ops.reshape(x, (ops.shape(x)[0], -1))
    return _per_example(reduce(flat, axis=-1), x)


@keras.saving.register_keras_serializable(package="keras_robust")
class APGD(GradientAttack):
    """Auto-PGD (APGD): PGD with momentum and a self-tuning step size.

    APGD needs no step size: it starts with `η = 2ε` and halves it, per
    example, at checkpoints where progress stalls, restarting that example
    from the best point found so far. It is the first two attacks of
    AutoAttack: APGD-CE (`loss="ce"`) and APGD-T (`loss="dlr",
    targeted=True`).

    Threat model: inputs in `value_range` (default `[0, 1]`), ε in the same
    units (CIFAR L∞: 8/255; L2: 0.5); the adversarial point stays inside the
    ε-ball of `norm` around the clean input and inside `value_range`. The
    model must output logits (the DLR losses assume it).

    Algorithm, with `P` the projection onto the ε-ball and the range, and
    `dir` the sign (L∞) or the L2-normalised gradient (L2):

    - start: `x⁰ = x + ε t / max|t|` with `t ~ U(-1, 1)` (L∞) or
      `x⁰ = x + ε t / ‖t‖₂` with `t ~ N(0, 1)` (L2), clipped to the range
      (`x⁰ = x` with `random_start=False`);
    - `x¹ = P(x⁰ + η dir(∇f(x⁰)))`, then `z = P(xᵏ + η dir(∇f(xᵏ)))` and
      `xᵏ⁺¹ = P(xᵏ + α (z - xᵏ) + (1 - α)(xᵏ - xᵏ⁻¹))` with `α = momentum`;
    - at the checkpoints `w_j` (22%, 41%, 57%, 70%, 80%, 87%, 93%, 99% of
      100 steps, see `apgd_checkpoints`), an example whose loss rose in
      fewer than a fraction `rho` of the iterations since the last
      checkpoint, or whose step size and best loss are both unchanged since
      then, gets `η ← η / 2` and continues from its best point;
    - per example the result is the first point found that the model
      misclassifies, else the point of highest loss; examples the model
      already misclassifies are returned unchanged.

    `targeted=True` (APGD-T) maximises the targeted DLR loss once for each
    of the `num_target_classes` highest-scoring wrong classes of the clean
    logits; `restarts > 1` repeats each run from new random starts. Later
    runs keep every example already misclassified, and are skipped once
    every example of the batch is; called on a model (`attack(model, x,
    y)`), each run attacks only the examples no earlier run has fooled, as
    in AutoAttack.

    Calling the attack (`attack(model, x, y)`) or `perturb(model_fn, x, y)`
    maximises `loss` against the labels; `perturb(..., loss_fn=...)` (a
    training objective's attack loss, e.g. TRADES') maximises that
    per-example loss instead and returns each example's point of highest
    loss (untargeted only). See `keras_robust.attacks.Attack`.

    Args:
        epsilon: Radius of the ε-ball, `>= 0`, in input units. Default 8/255.
        norm: `"linf"` (default) or `"l2"`.
        steps: Iterations per run, `>= 1`. Default 100.
        loss: `"ce"` (cross-entropy, default) or `"dlr"` (the Difference of
            Logits Ratio, invariant to the scale of the logits).
        targeted: Run the targeted DLR attack against several target
            classes (needs `loss="dlr"` and at least 4 classes).
        num_target_classes: Target classes of the targeted attack, `>= 1`
            and at most the number of classes minus 1. Default 9.
        restarts: Runs from random starts (per target class), `>= 1`.
        rho: Checkpoint threshold on the fraction of iterations whose loss
            increased, in `(0, 1]`. Default 0.75.
        momentum: Weight `α` of the new step against the previous update, in
            `(0, 1]` (1: no momentum). Default 0.75.
        random_start: Start from a random point on the boundary of the ball.
        value_range: `(low, high)` bounds of valid inputs. Default `(0, 1)`.

    Raises:
        ValueError: For an unknown `loss` or `norm`, `targeted` with
            `loss="ce"`, `num_target_classes` or `restarts` below 1,
            `restarts > 1` without `random_start`, `rho` or `momentum`
            outside `(0, 1]`, `epsilon < 0`, `steps < 1` or an invalid
            `value_range`.

    Example:

    >>> import keras, numpy as np, keras_robust as kr
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    >>> y = np.arange(8) % 3
    >>> attack = kr.attacks.APGD(epsilon=0.1, steps=20, loss="dlr")
    >>> x_adv = attack(model, x, y, seed=0)
    >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
    True

    References:
        Croce & Hein, "Reliable evaluation of adversarial robustness with an
        ensemble of diverse parameter-free attacks", ICML 2020.
    """

    def __init__(
        self,
        epsilon=8 / 255,
        *,
        norm="linf",
        steps=100,
        loss="ce",
        targeted=False,
        num_target_classes=9,
        restarts=1,
        rho=0.75,
        momentum=0.75,
        random_start=True,
        value_range=(0.0, 1.0),
    ):
        # The initial step size is 2ε, set once ε is validated.
        super().__init__(
            epsilon=epsilon,
            step_size=1.0,
            steps=steps,
            norm=norm,
            random_start=random_start,
            value_range=value_range,
            restarts=restarts,
        )
        self.step_size = 2.0 * self.epsilon
        self.loss = validate_choice("loss", loss, LOSSES)
        self.targeted = validate_bool("targeted", targeted)
        if self.targeted and loss != "dlr":
            raise ValueError(
                'A targeted APGD needs `loss="dlr"` (the targeted DLR loss). '
                f"Received: loss={loss!r}"
            )
        self.num_target_classes = validate_integer(
            "num_target_classes", num_target_classes
        )
        self.rho = validate_number("rho", rho, low=0.0, high=1.0, low_open=True)
        self.momentum = validate_number(
            "momentum", momentum, low=0.0, high=1.0, low_open=True
        )

    def random_delta(self, x, seed):
        """The reference's random start, on the boundary of the ε-ball.

        L∞: `ε t / max|t|` with `t ~ U(-1, 1)`; L2: `ε t / ‖t‖₂` with
        `t ~ N(0, 1)`, per example.
        """
        if self.norm == "linf":
            t = backend.random.uniform(
                ops.shape(x), -1.0, 1.0, dtype=x.dtype, seed=seed
            )
            scale = _flat_reduce(ops.max, ops.abs(t))
        else:
            t = backend.random.normal(ops.shape(x), dtype=x.dtype, seed=seed)
            scale = ops.sqrt(_flat_reduce(ops.sum, ops.square(t)))
        return self.epsilon * t / (scale + _TINY)

    def perturb(self, model_fn, x, y, *, loss_fn=None, seed=None, start=None):
        """Builds adversarial examples; usable inside a compiled step.

        Args:
            model_fn: Callable mapping inputs to logits (set the train/eval
                mode in it, e.g. `lambda x: model(x, training=False)`).
            x: Clean inputs in `value_range`, float.
            y: Sparse labels `[N]` or dense targets `[N, K]`: the attack
                maximises its `loss` against them and keeps, per example,
                the first misclassified point.
            loss_fn: Optional callable mapping logits `[N, K]` to the
                per-example loss `[N]` to maximise instead (a training
                objective's attack loss); each example then gets its point
                of highest loss. Not with `targeted=True`.
            seed: A `keras.random.SeedGenerator` for the random starts,
                created outside a compiled function (an int creates one,
                which works eagerly only).
            start: Optional starting point of the first run, replacing its
                random start; it is projected first.

        Returns:
            Adversarial inputs of the shape and dtype of `x`, with no
            gradient flowing back through them.

        Raises:
            ValueError: For `loss_fn` with a targeted attack; for a targeted
                attack with more target classes than wrong classes.
        """
        if loss_fn is not None and self.targeted:
            raise ValueError(
                "A targeted APGD maximises its own targeted DLR loss and cannot "
                "take another attack loss (e.g. the TRADES objective's). Use "
                "an untargeted attack for training. Received: "
                f"loss_fn={loss_fn!r} with targeted=True"
            )
        x = ops.stop_gradient(x)
        if is_zero(self.epsilon):
            return x
        if isinstance(seed, int):
            seed = keras.random.SeedGenerator(seed)

        prepared = self._prepare(model_fn, x, y, loss_fn)
        num_runs = self.restarts * (self.num_target_classes if self.targeted else 1)

        def run_once(run, state):
            x_out, best_loss, fooled = state
            x_best, loss_best, x_fool, fooled_run = self._attempt(
                model_fn, x, prepared, loss_fn, seed, start, run
            )
            newly_fooled = fooled_run & ops.logical_not(fooled)
            x_out = backend.select(newly_fooled, x_fool, x_out)
            fooled = fooled | fooled_run
            better = ops.logical_not(fooled) & (loss_best > best_loss)
            x_out = backend.select(better, x_best, x_out)
            best_loss = ops.where(better, loss_best, best_loss)
            return run + 1, (x_out, best_loss, fooled)

        state = (
            x,
            ops.full((ops.shape(x)[0],), -np.inf, dtype="float32"),
            prepared["fooled"],
        )
        if num_runs == 1:
            _, state = run_once(0, state)
        else:
            _, state = backend.while_loop(
                lambda run, state: (
                    (run < num_runs) & ops.any(ops.logical_not(state[2]))
                ),
                run_once,
                (ops.convert_to_tensor(0, dtype="int32"), state),
            )
        return ops.stop_gradient(state[0])

    def _prepare(self, model_fn, x, y, loss_fn, every_target=False):
        """What every run needs from the clean inputs.

        The target classes ranked are the attack's `num_target_classes` if
        it is targeted, else none; with `every_target`, all the wrong
        classes (where there are at least 3, as the targeted loss needs).

        Returns:
            A dict: `labels`, `targets` (one-hot) and `target_classes`
            (`None` where not needed) and `fooled`, the examples the model
            misclassifies without an attack (all `False` with `loss_fn`).
        """
        prepared = {
            "labels": None,
            "targets": None,
            "target_classes": None,
            "fooled": ops.zeros((ops.shape(x)[0],), dtype="bool"),
        }
        if loss_fn is None:
            clean_logits = ops.cast(model_fn(x), "float32")
            targets = class_one_hot(y, clean_logits)
            labels = class_indices(y, clean_logits)
            prepared.update(
                labels=labels,
                targets=targets,
                fooled=ops.cast(ops.argmax(clean_logits, axis=-1), "int32") != labels,
            )
            num_classes = clean_logits.shape[-1]
            num_targets = 0
            if every_target:
                if num_classes is None:
                    raise ValueError(
                        "APGD needs a model whose logits have a known number "
                        f"of classes. Received: logits of shape {clean_logits.shape}"
                    )
                num_targets = num_classes - 1 if num_classes >= 4 else 0
            elif self.targeted:
                if num_classes is not None:
                    self.check_num_classes(num_classes)
                num_targets = self.num_target_classes
            if num_targets:
                prepared["target_classes"] = self._target_classes(
                    clean_logits, targets, num_targets
                )
        return prepared

    def _attempt(self, model_fn, x, prepared, loss_fn, seed, start, run):
        """Run number `run` (target class `run // restarts`) from its start.

        Returns:
            `(x_best, loss_best, x_fool, fooled)` of `_run`.
        """
        target_mask = _target_mask(prepared, run // self.restarts)
        x_start = self._start(x, seed, start, run)
        kind = _RUN_LOSSES.index("dlr-t" if self.targeted else self.loss)
        evaluate = self._evaluator(
            model_fn,
            loss_fn,
            prepared["targets"],
            prepared["labels"],
            kind,
            target_mask,
        )
        return self._run(x, x_start, evaluate)

    def _runner(self, model, training, x, y):
        """The batch function of `attack(model, x, y)`.

        The runs (APGD-T's target classes, restarts) are driven from Python
        around one compiled run, as in AutoAttack: each run attacks only the
        examples that no earlier run has fooled, so the compiled function
        holds no loop over runs (cheaper to trace) and fooled examples cost
        nothing in later runs. The result follows `perturb`'s rule (first
        misclassified point, else highest loss). The compiled run takes the
        loss and the target class as inputs, so APGD-CE, APGD-DLR and APGD-T
        of one norm and step count share it on a model: an evaluation with
        the standard ensemble traces APGD once.
        """
        num_runs = self.restarts * (self.num_target_classes if self.targeted else 1)
        kind = np.float32(_RUN_LOSSES.index("dlr-t" if self.targeted else self.loss))

        def one_run(attack, model_fn, xb, yb, seed, extra):
            kind, target_rank = (ops.cast(value, "int32") for value in extra)
            # Every wrong class, the highest-scoring first: run r of APGD-T
            # targets the one of rank r // restarts.
            prepared = attack._prepare(model_fn, xb, yb, None, every_target=True)
            target_mask = _target_mask(prepared, target_rank)
            evaluate = attack._evaluator(
                model_fn,
                None,
                prepared["targets"],
                prepared["labels"],
                kind,
                target_mask,
            )
            x_start = attack._start(xb, seed, None, 0)
            return (*attack._run(xb, x_start, evaluate), prepared["fooled"])

        seed_generator, compiled, settings = self._compile(
            model,
            training,
            x,
            y,
            "run",
            one_run,
            extra_scalars=2,
            inputs=("loss", "targeted", "num_target_classes", "restarts"),
        )

        def run_batch(xb, yb):
            xb, yb = np.asarray(xb, dtype="float32"), np.asarray(yb)
            x_out = xb.copy()
            best_loss = np.full(len(x_out), -np.inf, dtype="float32")
            fooled = None
            active = np.arange(len(x_out))
            for run in range(num_runs):
                run_settings = [*settings, kind, np.float32(run // self.restarts)]
                outputs = compiled(xb[active], yb[active], run_settings)
                x_best, loss_best, x_fool, fooled_run, clean_wrong = (
                    ops.convert_to_numpy(output) for output in outputs
                )
                if fooled is None:
                    fooled = clean_wrong.copy()
                newly = fooled_run & ~fooled[active]
                x_out[active[newly]] = x_fool[newly]
                fooled[active] |= fooled_run
                better = ~fooled[active] & (loss_best > best_loss[active])
                x_out[active[better]] = x_best[better]
                best_loss[active[better]] = loss_best[better]
                active = np.flatnonzero(~fooled)
                if not active.size:
                    break
            return x_out

        return seed_generator, run_batch

    # --- the pieces of a run ----------------------------------------------------

    def check_num_classes(self, num_classes):
        minimum = {"ce": 2, "dlr": 4 if self.targeted else 3}[self.loss]
        if num_classes < minimum:
            raise ValueError(
                f"APGD with loss={self.loss!r}, targeted={self.targeted} needs "
                f"logits over at least {minimum} classes. Received: a model with "
                f"{num_classes} classes"
            )
        if self.targeted and self.num_target_classes > num_classes - 1:
            raise ValueError(
                "Argument `num_target_classes` must be at most the number of "
                f"classes minus 1 ({num_classes - 1}). "
                f"Received: num_target_classes={self.num_target_classes}"
            )

    def _target_classes(self, clean_logits, targets, count):
        """The `count` highest-scoring wrong classes of each example, `[N, T]`."""
        others = ops.where(targets > 0, -np.inf, clean_logits)
        _, classes = ops.top_k(others, k=count, sorted=True)
        return classes

    def _start(self, x, seed, start, run):
        if self.random_start:
            x_start = self.project(x + self.random_delta(x, seed), x)
        else:
            x_start = x
        if start is None:
            return x_start
        return backend.select(run == 0, self.project(start, x), x_start)

    def _evaluator(self, model_fn, loss_fn, targets, labels, kind, target_mask):
        """`evaluate(points) -> (loss, misclassified, input gradient)`.

        With `loss_fn`, its loss, differentiated by the tape, and nothing
        counts as misclassified; else the loss `_RUN_LOSSES[kind]` (`kind`
        a Python int or an int32 scalar tensor, chosen at run time) against
        `targets`, whose gradient by the logits is written out (see
        `_loss_and_gradient`): the tape runs the model's backward pass only.
        `target_mask` (one-hot `[N, K]`) gives APGD-T's target classes.
        """
        if loss_fn is not None:

            def evaluate(points):
                loss, gradient = backend.value_and_input_gradient(
                    lambda inputs: ops.cast(loss_fn(model_fn(inputs)), "float32"),
                    points,
                )
                return loss, ops.zeros_like(loss, dtype="bool"), gradient

            return evaluate

        def head(logits):
            loss, gradient, predicted = _loss_and_gradient(
                ops.cast(logits, "float32"), targets, kind, target_mask
            )
            return (loss, predicted != labels), ops.cast(gradient, logits.dtype)

        def evaluate(points):
            (loss, wrong), gradient = backend.value_and_input_vjp(
                model_fn, head, points
            )
            return loss, wrong, gradient

        return evaluate

    def _run(self, x, x_start, evaluate):
        """One APGD run from `x_start`, `evaluate` as made by `_evaluator`.

        Returns:
            `(x_best, loss_best, x_fool, fooled)`: the point of highest loss
            and its loss, the first misclassified point and whether there
            is one, per example.
        """

        checkpoints = apgd_checkpoints(self.steps)
        is_checkpoint = np.zeros(self.steps, dtype=bool)
        periods = np.ones(self.steps, dtype="float32")
        for previous, point in zip(checkpoints[:-1], checkpoints[1:], strict=True):
            # Checked after the update that produces x^point.
            is_checkpoint[point - 1] = True
            periods[point - 1] = point - previous
        is_checkpoint = ops.convert_to_tensor(is_checkpoint)
        periods = ops.convert_to_tensor(periods)

        project = self.projection(x)
        loss, wrong, gradient = evaluate(x_start)
        step_size = ops.full(ops.shape(loss), 2.0 * self.epsilon, dtype="float32")

        def step(i, state):
            (
                x_cur,
                x_prev,
                gradient,
                loss_prev,
                x_best,
                gradient_best,
                loss_best,
                step_size,
                increases,
                best_at_checkpoint,
                reduced_at_checkpoint,
                x_fool,
                fooled,
            ) = state
            alpha = ops.where(i == 0, 1.0, self.momentum)
            alpha = ops.cast(alpha, x_cur.dtype)
            eta = ops.cast(_per_example(step_size, x_cur), x_cur.dtype)
            z = project(x_cur + eta * self.ascent_direction(gradient))
            x_new = project(
                x_cur + alpha * (z - x_cur) + (1.0 - alpha) * (x_cur - x_prev)
            )
            loss, wrong, gradient_new = evaluate(x_new)

            x_fool = backend.select(wrong & ops.logical_not(fooled), x_new, x_fool)
            fooled = fooled | wrong
            increases = increases + ops.cast(loss > loss_prev, "float32")
            improved = loss > loss_best
            x_best = backend.select(improved, x_new, x_best)
            gradient_best = backend.select(improved, gradient_new, gradient_best)
            loss_best = ops.where(improved, loss, loss_best)

            checkpoint = ops.take(is_checkpoint, i)
            # Condition 1: the loss rose in too few iterations of the period.
            oscillating = increases < self.rho * ops.take(periods, i)
            # Condition 2: the step size was kept at the last checkpoint and
            # the best loss has not improved since.
            stalled = ops.logical_not(reduced_at_checkpoint) & (
                best_at_checkpoint >= loss_best
            )
            reduce = checkpoint & (oscillating | stalled)
            step_size = ops.where(reduce, 0.5 * step_size, step_size)
            x_next = backend.select(reduce, x_best, x_new)
            gradient_next = backend.select(reduce, gradient_best, gradient_new)
            reduced_at_checkpoint = ops.where(checkpoint, reduce, reduced_at_checkpoint)
            best_at_checkpoint = ops.where(checkpoint, loss_best, best_at_checkpoint)
            increases = ops.where(checkpoint, 0.0, increases)
            return (
                x_next,
                x_cur,
                gradient_next,
                loss,
                x_best,
                gradient_best,
                loss_best,
                step_size,
                increases,
                best_at_checkpoint,
                reduced_at_checkpoint,
                x_fool,
                fooled,
            )

        state = (
            x_start,
            x_start,
            gradient,
            loss,
            x_start,
            gradient,
            loss,
            step_size,
            ops.zeros_like(loss),
            loss,
            # As in the reference code, condition 2 cannot hold at the first
            # checkpoint.
            ops.ones_like(wrong),
            x_start,
            wrong,
        )
        if self.steps <= UNROLL_MAX_STEPS:
            for i in range(self.steps):
                state = step(i, state)
        else:
            state = backend.fori_loop(0, self.steps, step, state)
        return state[4], state[6], state[11], state[12]

    def get_config(self):
        config = super().get_config()
        # The step size is not an argument: APGD starts from 2ε.
        del config["step_size"]
        return {
            **config,
            "loss": self.loss,
            "targeted": self.targeted,
            "num_target_classes": self.num_target_classes,
            "restarts": self.restarts,
            "rho": self.rho,
            "momentum": self.momentum,
        }

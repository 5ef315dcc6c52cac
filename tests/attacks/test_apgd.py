"""APGD and the attack losses: formulas, an independent reference, strength."""

import functools
import math
from fractions import Fraction

import keras
import numpy as np
import pytest
from keras import ops

import keras_robust as kr
from keras_robust.attacks import (
    APGD,
    PGD,
    cross_entropy_loss,
    dlr_loss,
    margin_loss,
    targeted_dlr_loss,
)
from keras_robust.attacks.apgd import _loss_and_gradient, apgd_checkpoints

from ..backend_tools import compiled, expected_traces, value_and_gradient

EPSILON = {"linf": 0.1, "l2": 1.0}

# Logits of three examples over 5 classes: true class 0 ranked first (correct),
# second (wrong) and last (wrong).
LOGITS = np.array(
    [
        [4.0, 1.0, 3.0, -2.0, 0.5],
        [2.0, 5.0, -1.0, 1.5, 0.0],
        [-3.0, 0.0, 2.5, 1.0, 4.0],
    ],
    "float32",
)
ONE_HOT = np.eye(5, dtype="float32")[[0, 0, 0]]


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def _predictions(model, x):
    return np.argmax(_numpy(model(x, training=False)), axis=-1)


def _success_rate(model, x_adv, y, correct):
    """Fraction of the correctly classified examples that the attack flips."""
    return float(np.mean(_predictions(model, x_adv[correct]) != y[correct]))


def _distances(x_adv, x, norm):
    delta = (x_adv - x).reshape(len(x), -1).astype("float64")
    if norm == "linf":
        return np.abs(delta).max(axis=1)
    return np.sqrt(np.sum(delta**2, axis=1))


@pytest.fixture(scope="module")
def attacked(mlp):
    """Cached `name -> x_adv` of the attacks several tests look at (seed 0)."""
    model, x, y = mlp
    cache = {}

    def get(name):
        if name not in cache:
            attacks = {
                "ce": APGD(EPSILON["linf"]),
                "dlr": APGD(EPSILON["linf"], loss="dlr"),
                "targeted": APGD(EPSILON["linf"], loss="dlr", targeted=True),
                "l2": APGD(EPSILON["l2"], norm="l2"),
                "pgd": PGD(EPSILON["linf"], step_size=EPSILON["linf"] / 4, steps=100),
            }
            cache[name] = attacks[name](model, x, y, batch_size=len(x), seed=0)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def correct(mlp):
    model, x, y = mlp
    return _predictions(model, x) == y


# --- the losses ----------------------------------------------------------------


def test_cross_entropy_loss_matches_formula():
    soft = np.full((3, 5), 0.05, "float32")
    soft[:, 0] = 0.8
    log_probs = LOGITS - np.log(np.sum(np.exp(LOGITS), axis=1, keepdims=True))
    for targets in (ONE_HOT, soft):
        np.testing.assert_allclose(
            _numpy(cross_entropy_loss(LOGITS, targets)),
            -np.sum(targets * log_probs, axis=1),
            rtol=1e-5,
        )


def test_dlr_loss_matches_formula_and_ignores_logit_scale():
    z = LOGITS.astype("float64")
    # z_y, max_{i != y} z_i and z_π1 - z_π3 for each row, by hand.
    expected = [
        -(4.0 - 3.0) / (4.0 - 1.0),
        -(2.0 - 5.0) / (5.0 - 1.5),
        -(-3.0 - 4.0) / (4.0 - 1.0),
    ]
    values = _numpy(dlr_loss(LOGITS, ONE_HOT))
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    # Positive exactly for the misclassified rows.
    assert list(values > 0) == [False, True, True]
    for scale, shift in [(1000.0, 0.0), (0.01, 7.0), (3.0, -50.0)]:
        transformed = (scale * z + shift).astype("float32")
        np.testing.assert_allclose(
            _numpy(dlr_loss(transformed, ONE_HOT)), expected, rtol=1e-4
        )
    # Soft targets: their arg-max is the true class.
    soft = 0.6 * ONE_HOT + 0.1
    np.testing.assert_allclose(_numpy(dlr_loss(LOGITS, soft)), expected, rtol=1e-6)


def test_targeted_dlr_loss_matches_formula_and_ignores_logit_scale():
    targets_classes = np.array([2, 4, 3])
    # -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2) for each row, by hand.
    expected = [
        -(4.0 - 3.0) / (4.0 - (1.0 + 0.5) / 2),
        -(2.0 - 0.0) / (5.0 - (1.5 + 0.0) / 2),
        -(-3.0 - 1.0) / (4.0 - (1.0 + 0.0) / 2),
    ]
    values = _numpy(targeted_dlr_loss(LOGITS, ONE_HOT, targets_classes))
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    one_hot_targets = np.eye(5, dtype="float32")[targets_classes]
    np.testing.assert_allclose(
        _numpy(targeted_dlr_loss(LOGITS, ONE_HOT, one_hot_targets)),
        expected,
        rtol=1e-6,
    )
    transformed = (250.0 * LOGITS.astype("float64") - 3.0).astype("float32")
    np.testing.assert_allclose(
        _numpy(targeted_dlr_loss(transformed, ONE_HOT, targets_classes)),
        expected,
        rtol=1e-4,
    )


def test_margin_loss_matches_formula():
    # max_{i != y} z_i - z_y.
    expected = np.array([3.0 - 4.0, 5.0 - 2.0, 4.0 + 3.0], "float32")
    np.testing.assert_allclose(_numpy(margin_loss(LOGITS, ONE_HOT)), expected)
    np.testing.assert_allclose(
        _numpy(margin_loss(LOGITS, ONE_HOT, confidence=5.0)),
        np.minimum(expected, 5.0),
    )
    np.testing.assert_allclose(
        _numpy(margin_loss(LOGITS, ONE_HOT, confidence=0.0)), [-1.0, 0.0, 0.0]
    )
    with pytest.raises(ValueError, match=r"`confidence`.*Received: confidence=-1"):
        margin_loss(LOGITS, ONE_HOT, confidence=-1.0)


def test_losses_need_enough_classes():
    with pytest.raises(ValueError, match=r"at least 3 classes.*Received: logits"):
        dlr_loss(LOGITS[:, :2], ONE_HOT[:, :2])
    with pytest.raises(ValueError, match=r"at least 4 classes.*Received: logits"):
        targeted_dlr_loss(LOGITS[:, :3], ONE_HOT[:, :3], np.array([1, 1, 1]))


def test_gradients_flow_through_the_losses():
    for loss in (dlr_loss, margin_loss, cross_entropy_loss):
        _, gradient = value_and_gradient(
            functools.partial(loss, targets=ONE_HOT), LOGITS
        )
        assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


@pytest.mark.parametrize("run_time_choice", [False, True])
def test_written_out_logit_gradients_equal_the_losses_gradients(run_time_choice):
    # APGD writes out each loss's gradient by the logits (the tape then runs
    # the model's backward pass only): the loss values are the public
    # losses', the gradients theirs, chosen by a Python int or a tensor.
    rng = np.random.default_rng(0)
    logits = (3 * rng.normal(size=(64, 6))).astype("float32")
    labels = rng.integers(0, 6, size=64)
    one_hot = np.eye(6, dtype="float32")[labels]
    targets = (labels + rng.integers(1, 6, size=64)) % 6
    target_mask = np.eye(6, dtype="float32")[targets]
    references = {
        0: lambda z: cross_entropy_loss(z, one_hot),
        1: lambda z: dlr_loss(z, one_hot),
        2: lambda z: targeted_dlr_loss(z, one_hot, targets),
    }
    for kind, reference in references.items():
        z = ops.convert_to_tensor(logits)
        expected, expected_gradient = value_and_gradient(reference, logits)
        if run_time_choice:
            chosen = _loss_and_gradient(
                z, one_hot, ops.convert_to_tensor(kind, "int32"), target_mask
            )
        else:
            mask = target_mask if kind == 2 else None
            chosen = _loss_and_gradient(z, one_hot, kind, mask)
        loss, gradient, predicted = (_numpy(value) for value in chosen)
        np.testing.assert_array_equal(loss, expected)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(predicted, logits.argmax(axis=1))


def test_written_out_dlr_gradient_sends_a_tied_rank_to_one_class():
    # Classes 1 and 2 tie for the best other logit: as in the reference
    # code, which sorts, the rank's gradient goes to the first of them only
    # (the tape's max would split it).
    logits = np.array([[0.0, 2.0, 2.0, 1.0, -1.0]], "float32")
    one_hot = np.eye(5, dtype="float32")[[0]]
    loss, gradient, predicted = _loss_and_gradient(
        ops.convert_to_tensor(logits), one_hot, 1
    )
    gradient = _numpy(gradient)[0]
    scale = 2.0 - 1.0 + 1e-12
    np.testing.assert_allclose(_numpy(loss), [2.0 / scale])
    # d/dz of −(z_0 − z_1) / (z_π1 − z_π3), π = (1, 2, 3, 0, 4).
    np.testing.assert_allclose(
        gradient, [-1.0, 1.0 - 2.0, 0.0, 2.0, 0.0], rtol=1e-6, atol=1e-6
    )
    assert int(_numpy(predicted)[0]) == 1


# --- the checkpoints -----------------------------------------------------------


def _checkpoints_from_the_paper(steps):
    """w_j = ceil(p_j N), p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(Δ - 0.03, 0.06)."""
    p = [Fraction(0), Fraction(22, 100)]
    while p[-1] * steps <= steps:
        p.append(p[-1] + max(p[-1] - p[-2] - Fraction(3, 100), Fraction(6, 100)))
    points = sorted({math.ceil(q * steps) for q in p if q * steps <= steps})
    return points


@pytest.mark.parametrize("steps", [1, 5, 10, 37, 100, 250, 1000])
def test_checkpoints_follow_the_formula(steps):
    points = apgd_checkpoints(steps)
    assert points == _checkpoints_from_the_paper(steps)
    assert points[0] == 0 and points[-1] <= steps
    assert all(b > a for a, b in zip(points, points[1:], strict=False))


def test_checkpoints_for_100_steps():
    points = apgd_checkpoints(100)
    # p_j = 0, .22, .41, .57, .70, .80, .87, .93, .99: the periods shrink by
    # 3 iterations from 22 until they reach the minimum of 6.
    periods = np.diff(points).tolist()
    assert periods[0] == 22
    assert all(b == max(a - 3, 6) for a, b in zip(periods, periods[1:], strict=False))
    assert points[-1] + 6 > 100
    assert points == _checkpoints_from_the_paper(100)


# --- against an independent reference ---------------------------------------------


def reference_apgd(model, x, y, *, epsilon, steps, loss):
    """APGD (L∞, no random start) written out eagerly, after Croce & Hein's code.

    The checkpoints follow the reference code's integer schedule: the first
    after `int(0.22 N)` iterations, then periods shrinking by `int(0.03 N)`
    down to `int(0.06 N)`. Returns the result and the number of step-size
    halvings.
    """
    x = np.asarray(x, "float32")
    onehot = np.eye(10, dtype="float32")[y]

    def losses_of(points):
        logits = model(points, training=False)
        if loss == "ce":
            return -ops.sum(onehot * ops.log_softmax(logits, axis=1), axis=1)
        ranked = ops.flip(ops.sort(logits, axis=1), axis=1)
        true = ops.sum(onehot * logits, axis=1)
        top_is_true = ops.cast(ops.argmax(logits, axis=1) == y, "float32")
        best_other = top_is_true * ranked[:, 1] + (1 - top_is_true) * ranked[:, 0]
        return -(true - best_other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)

    def evaluate(points):
        values, gradient = value_and_gradient(losses_of, points)
        wrong = _predictions(model, points) != y
        return values, gradient, wrong

    def project(points):
        points = np.clip(points, x - epsilon, x + epsilon)
        return np.clip(points, 0.0, 1.0)

    x_adv = x.copy()
    losses, gradient, wrong = evaluate(x_adv)
    history = [losses]
    x_best, gradient_best, loss_best = x_adv.copy(), gradient.copy(), losses.copy()
    x_fool, fooled = x_adv.copy(), wrong.copy()
    eta = np.full((len(x), 1, 1, 1), 2 * epsilon, "float32")
    x_old = x_adv.copy()
    period = max(int(0.22 * steps), 1)
    decrease, minimum = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    counter, halvings = 0, 0
    reduced_last, best_last = np.ones(len(x), bool), loss_best.copy()
    for i in range(steps):
        momentum_term = x_adv - x_old
        x_old = x_adv.copy()
        a = 1.0 if i == 0 else 0.75
        z = project(x_adv + eta * np.sign(gradient))
        x_adv = project(x_adv + a * (z - x_adv) + (1 - a) * momentum_term)
        losses, gradient, wrong = evaluate(x_adv)
        history.append(losses)
        new = wrong & ~fooled
        x_fool[new] = x_adv[new]
        fooled |= wrong
        better = losses > loss_best
        x_best[better], gradient_best[better] = x_adv[better], gradient[better]
        loss_best[better] = losses[better]
        counter += 1
        if counter == period:
            increases = sum(history[-j] > history[-j - 1] for j in range(1, period + 1))
            reduce = (increases < 0.75 * period) | (
                ~reduced_last & (best_last >= loss_best)
            )
            eta[reduce] /= 2
            x_adv[reduce], gradient[reduce] = x_best[reduce], gradient_best[reduce]
            halvings += int(reduce.sum())
            reduced_last, best_last = reduce, loss_best.copy()
            counter, period = 0, max(period - decrease, minimum)
    result = np.where(fooled[:, None, None, None], x_fool, x_best)
    clean_wrong = _predictions(model, x) != y
    result[clean_wrong] = x[clean_wrong]
    return result, halvings


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_matches_the_reference_without_random_start(mlp, loss):
    model, x, y = mlp
    attack = APGD(EPSILON["linf"], loss=loss, random_start=False)
    x_adv = attack(model, x, y, batch_size=len(x))
    expected, halvings = reference_apgd(
        model, x, y, epsilon=EPSILON["linf"], steps=100, loss=loss
    )
    # The step-size logic is exercised: observed 3,587 (CE) and 3,584 (DLR)
    # halvings of at most 3,600 (450 examples, 8 checkpoints).
    assert halvings > len(x)
    same = np.all(np.isclose(x_adv, expected, atol=1e-6).reshape(len(x), -1), axis=1)
    # Graph and eager gradients may differ in the last bit; observed: every
    # example bitwise equal.
    assert np.mean(same) > 0.98
    np.testing.assert_array_equal(
        _predictions(model, x_adv) != y, _predictions(model, expected) != y
    )


# --- threat model ------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_stays_in_ball_and_value_range(mlp, attacked, norm):
    model, x, y = mlp
    x_adv = attacked("ce" if norm == "linf" else "l2")
    epsilon = EPSILON[norm]
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    distances = _distances(x_adv, x, norm)
    tolerance = 1e-6 if norm == "linf" else 1e-5 * epsilon
    assert distances.max() <= epsilon + tolerance
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert distances.max() >= 0.99 * epsilon


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_lies_on_the_sphere(norm):
    epsilon = EPSILON[norm]
    attack = APGD(epsilon, norm=norm)
    zeros = keras.ops.zeros((500, 8, 8, 1))
    delta = _numpy(attack.random_delta(zeros, keras.random.SeedGenerator(3)))
    distances = _distances(delta, np.zeros_like(delta), norm)
    np.testing.assert_allclose(distances, epsilon, rtol=1e-5)
    assert len(np.unique(delta.reshape(500, -1), axis=0)) == 500
    if norm == "linf":
        # ε t / max|t| with t ~ U(-1, 1): the other coordinates stay uniform.
        assert np.mean(delta < -epsilon / 2) == pytest.approx(0.25, abs=0.02)
    other = _numpy(attack.random_delta(zeros, keras.random.SeedGenerator(4)))
    assert not np.allclose(other, delta)


def test_zero_epsilon_returns_inputs_unchanged(mlp):
    model, x, y = mlp
    np.testing.assert_array_equal(APGD(0.0, steps=5)(model, x[:50], y[:50]), x[:50])


# --- strength ------------------------------------------------------------------------


def test_apgd_ce_at_least_as_strong_as_pgd(mlp, attacked, accuracy, clean_accuracy):
    model, x, y = mlp
    apgd, pgd = accuracy(model, attacked("ce"), y), accuracy(model, attacked("pgd"), y)
    # Observed (L∞ ε = 0.1, seed 0): clean 0.962, PGD-100 (step ε/4) 0.531,
    # APGD-CE 0.531.
    assert apgd <= pgd + 0.01
    assert apgd < clean_accuracy - 0.3


def test_dlr_and_targeted_dlr_lower_accuracy(mlp, attacked, accuracy, clean_accuracy):
    model, x, y = mlp
    dlr = accuracy(model, attacked("dlr"), y)
    targeted = accuracy(model, attacked("targeted"), y)
    # Observed: clean 0.962, APGD-DLR 0.524, APGD-T (9 targets) 0.502.
    assert dlr < clean_accuracy - 0.3
    assert targeted < clean_accuracy - 0.3
    assert targeted <= dlr + 0.02


def test_dlr_is_invariant_to_the_logit_scale(mlp, attacked, correct):
    model, x, y = mlp
    # Multiplying the logits by 1000 saturates the softmax: the cross-entropy
    # gradient underflows to zero on confidently classified examples.
    scaled = keras.Sequential([model, keras.layers.Rescaling(1000.0)])
    np.testing.assert_array_equal(_predictions(scaled, x), _predictions(model, x))
    unscaled_rate = _success_rate(model, attacked("dlr"), y, correct)
    scaled_rate = _success_rate(
        scaled, APGD(EPSILON["linf"], loss="dlr")(scaled, x, y, seed=0), y, correct
    )
    ce_rate = _success_rate(
        scaled, APGD(EPSILON["linf"])(scaled, x, y, seed=0), y, correct
    )
    # Observed success rates: APGD-DLR 0.455 (logits) and 0.453 (x1000);
    # APGD-CE on the scaled model 0.007 (0.448 on the logits).
    assert scaled_rate > 0.3
    assert abs(scaled_rate - unscaled_rate) <= 0.02
    assert ce_rate < scaled_rate - 0.2


# --- randomness and restarts ------------------------------------------------------


def test_seeding_and_restarts(mlp):
    model, x, y = mlp
    x, y = x[:150], y[:150]
    attack = APGD(EPSILON["linf"], steps=30)
    first = attack(model, x, y, seed=1)
    np.testing.assert_array_equal(attack(model, x, y, seed=1), first)
    other = attack(model, x, y, seed=2)
    # Sign steps of 2ε drive many examples of this nearly linear model to
    # the same vertex of the ball from any start; observed: 57% differ.
    assert np.mean(np.any((other != first).reshape(len(x), -1), axis=1)) > 0.3
    # The first of two restarts draws the same start as a single run, and
    # a success is kept.
    restarted = APGD(EPSILON["linf"], steps=30, restarts=2)(model, x, y, seed=1)
    fooled_once = _predictions(model, first) != y
    fooled_twice = _predictions(model, restarted) != y
    assert np.all(fooled_twice[fooled_once])
    np.testing.assert_array_equal(restarted[fooled_once], first[fooled_once])


def test_runs_attack_only_unfooled_examples_and_match_perturb(mlp):
    """Several runs (target classes) are driven around one compiled run,
    each on the examples not fooled yet; per example this is what
    `perturb`'s in-graph loop over the runs computes."""
    trained, x, y = mlp
    model = keras.models.clone_model(trained)  # its own compiled functions
    model.set_weights(trained.get_weights())
    x, y = x[:120], y[:120]
    attack = APGD(
        EPSILON["linf"],
        steps=10,
        loss="dlr",
        targeted=True,
        num_target_classes=3,
        random_start=False,
    )
    called = attack(model, x, y, batch_size=50, seed=0)
    in_graph = ops.convert_to_numpy(
        attack.perturb(lambda inputs: model(inputs, training=False), x, y, seed=0)
    )
    fooled = _predictions(model, called) != y
    np.testing.assert_array_equal(fooled, _predictions(model, in_graph) != y)
    assert fooled.mean() > 0.2
    np.testing.assert_allclose(called[fooled], in_graph[fooled], atol=1e-6)
    assert np.all(_distances(called, x, "linf") <= EPSILON["linf"] + 1e-6)
    # Three target classes, three batches and two calls: one trace.
    runners = [run for _, run in kr.attacks.base._RUNNERS[model].values()]
    attack(model, x, y, batch_size=50, seed=1)
    traced = [run.experimental_get_tracing_count() for run in runners]
    assert len(runners) == len(kr.attacks.base._RUNNERS[model])
    # On JAX too: the examples still attacked run padded to the batch size.
    assert traced == [expected_traces((120, 50))] == [1]


def test_losses_share_one_compiled_run_and_match_perturb(mlp):
    """APGD-CE, APGD-DLR and APGD-T (any targets, restarts) on a model run
    one compiled function, given the loss as an input; each gives what its
    own `perturb` computes."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    _, x, y = mlp
    x, y = x[:60], y[:60]
    attacks = [
        APGD(EPSILON["linf"], steps=8, random_start=False),
        APGD(EPSILON["linf"], steps=8, loss="dlr", random_start=False),
        APGD(
            EPSILON["linf"],
            steps=8,
            loss="dlr",
            targeted=True,
            num_target_classes=2,
            random_start=False,
        ),
    ]
    for attack in attacks:
        called = attack(model, x, y, seed=0)
        in_graph = ops.convert_to_numpy(
            attack.perturb(lambda inputs: model(inputs, training=False), x, y, seed=0)
        )
        np.testing.assert_allclose(called, in_graph, atol=1e-6)
    runners = [run for _, run in kr.attacks.base._RUNNERS[model].values()]
    assert len(runners) == 1
    assert runners[0].experimental_get_tracing_count() == expected_traces((60, 256))
    # Random starts are another function, which restarts and targets share.
    restarted = APGD(
        EPSILON["linf"],
        steps=8,
        loss="dlr",
        targeted=True,
        num_target_classes=3,
        restarts=2,
    )
    assert np.abs(restarted(model, x, y, seed=1) - x).max() <= EPSILON["linf"] + 1e-6
    APGD(EPSILON["linf"], steps=8)(model, x, y, seed=2)
    runners = [run for _, run in kr.attacks.base._RUNNERS[model].values()]
    assert len(runners) == 2
    assert [run.experimental_get_tracing_count() for run in runners] == [
        expected_traces((60, 256))
    ] * 2


# --- inside a compiled step ---------------------------------------------------------


def test_perturb_with_a_loss_function_returns_the_highest_loss_point(mlp):
    model, x, y = mlp
    attack = APGD(EPSILON["linf"], steps=30, random_start=False)

    def model_fn(inputs):
        return model(inputs, training=False)

    def cross_entropy(points):
        return _numpy(cross_entropy_loss(model(points), np.eye(10, dtype="float32")[y]))

    run = compiled(
        lambda xb, yb: attack.perturb(
            model_fn,
            xb,
            yb,
            loss_fn=lambda logits: cross_entropy_loss(
                logits, np.eye(10, dtype="float32")[y]
            ),
        )
    )
    highest_loss = _numpy(run(x, y))
    with_labels = attack(model, x, y, batch_size=len(x))
    assert np.max(np.abs(highest_loss - x)) <= EPSILON["linf"] + 1e-6
    # The highest-loss point beats the clean input and the first
    # misclassified point; both agree on the examples never misclassified.
    assert np.all(cross_entropy(highest_loss) >= cross_entropy(with_labels) - 1e-5)
    assert np.all(cross_entropy(highest_loss) >= cross_entropy(x) - 1e-5)
    never_fooled = _predictions(model, with_labels) == y
    np.testing.assert_array_equal(highest_loss[never_fooled], with_labels[never_fooled])
    targeted = APGD(loss="dlr", targeted=True)
    with pytest.raises(ValueError, match=r"with targeted=True"):
        targeted.perturb(model_fn, x, y, loss_fn=lambda logits: logits[:, 0])


# --- arguments and serialization --------------------------------------------------

INVALID = [
    ("loss", "cw"),
    ("loss", None),
    ("targeted", 1),
    ("num_target_classes", 0),
    ("num_target_classes", 2.0),
    ("restarts", 0),
    ("restarts", True),
    ("rho", 0.0),
    ("rho", 1.5),
    ("momentum", 0.0),
    ("momentum", -0.5),
    ("momentum", float("nan")),
    ("epsilon", -0.1),
    ("steps", 0),
    ("norm", "l1"),
    ("value_range", (1.0, 0.0)),
]


@pytest.mark.parametrize(
    ("name", "value"), INVALID, ids=[f"{n}={v!r}" for n, v in INVALID]
)
def test_invalid_arguments_raise(name, value):
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}="):
        APGD(**{name: value})


def test_invalid_combinations_raise(mlp):
    model, x, y = mlp
    with pytest.raises(ValueError, match=r'loss="dlr".*Received: loss=\'ce\''):
        APGD(targeted=True)
    with pytest.raises(ValueError, match=r"random_start.*Received: restarts=3"):
        APGD(restarts=3, random_start=False)
    with pytest.raises(ValueError, match=r"Received: num_target_classes=10"):
        APGD(loss="dlr", targeted=True, num_target_classes=10, steps=2)(
            model, x[:10], y[:10]
        )
    with pytest.raises(ValueError, match=r"`y` must hold class labels"):
        APGD(steps=2)(model, x[:10], y[:10] + 10)


def test_serialization_round_trip(mlp):
    model, x, y = mlp
    attack = APGD(
        0.5, norm="l2", steps=25, loss="dlr", targeted=True, num_target_classes=3
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(attack)
    )
    assert type(restored) is APGD
    assert attack.get_config() == {
        "epsilon": 0.5,
        "steps": 25,
        "norm": "l2",
        "random_start": True,
        "value_range": [0.0, 1.0],
        "loss": "dlr",
        "targeted": True,
        "num_target_classes": 3,
        "restarts": 1,
        "rho": 0.75,
        "momentum": 0.75,
    }
    assert restored.get_config() == attack.get_config()
    assert attack.step_size == 1.0
    np.testing.assert_array_equal(
        restored(model, x[:60], y[:60], seed=3), attack(model, x[:60], y[:60], seed=3)
    )

"""Behaviour shared by every gradient attack: threat model, targets, seeds, errors."""

import gc
import weakref

import keras
import numpy as np
import pytest
from keras import ops

import keras_robust as kr
from keras_robust.attacks import FGSM, PGD, GradientAttack

from ..backend_tools import expected_traces, value_and_gradient

# L∞ and L2 budgets of roughly equal strength on 8x8 digits in [0, 1].
EPSILON = {"linf": 0.1, "l2": 1.0}


def _attack(norm, random_start=True, **kwargs):
    epsilon = kwargs.pop("epsilon", EPSILON[norm])
    return GradientAttack(
        epsilon=epsilon,
        step_size=kwargs.pop("step_size", epsilon / 4),
        steps=kwargs.pop("steps", 10),
        norm=norm,
        random_start=random_start,
        **kwargs,
    )


def _distances(x_adv, x, norm):
    delta = (x_adv - x).reshape(len(x), -1).astype("float64")
    if norm == "linf":
        return np.abs(delta).max(axis=1)
    return np.sqrt(np.sum(delta**2, axis=1))


def _assert_in_ball(x_adv, x, epsilon, norm):
    distances = _distances(x_adv, x, norm)
    if norm == "linf":
        assert distances.max() <= epsilon + 1e-6
    else:
        assert distances.max() <= epsilon * (1 + 1e-5)


# --- threat model ------------------------------------------------------------


@pytest.mark.parametrize("random_start", [True, False])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_stays_in_ball_and_value_range(mlp, norm, random_start):
    model, x, y = mlp
    epsilon = EPSILON[norm]
    x_adv = _attack(norm, random_start)(model, x, y, seed=0)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    _assert_in_ball(x_adv, x, epsilon, norm)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    # The budget is used: some example reaches the boundary of the ball.
    assert _distances(x_adv, x, norm).max() >= 0.99 * epsilon


@pytest.mark.parametrize("random_start", [True, False])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_non_default_value_range(mlp, accuracy, norm, random_start):
    model, x, y = mlp
    # The same classifier, taking inputs scaled from [0, 1] into [-1, 1].
    scaled_model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Rescaling(0.5, offset=0.5), model]
    )
    x_scaled = 2.0 * x - 1.0
    epsilon = 2 * EPSILON[norm]
    attack = _attack(norm, random_start, epsilon=epsilon, value_range=(-1.0, 1.0))
    x_adv = attack(scaled_model, x_scaled, y, seed=0)
    _assert_in_ball(x_adv, x_scaled, epsilon, norm)
    # Digits touch both bounds, so the clipping to [-1, 1] is exercised.
    assert x_adv.min() == -1.0 and x_adv.max() == 1.0
    if not random_start:
        # Attacking in [-1, 1] with doubled ε and step is attacking in [0, 1].
        reference = _attack(norm, False)(model, x, y)
        np.testing.assert_allclose((x_adv + 1.0) / 2.0, reference, atol=1e-5)
        assert accuracy(scaled_model, x_adv, y) == accuracy(model, reference, y)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize(
    "make",
    [
        lambda norm: PGD(epsilon=0.0, norm=norm),
        lambda norm: PGD(epsilon=0.0, step_size=0.5, steps=3, norm=norm),
        lambda norm: FGSM(epsilon=0.0, norm=norm, random_start=True),
    ],
    ids=["PGD", "PGD-large-step", "FGSM-random-start"],
)
def test_zero_epsilon_returns_inputs_unchanged(mlp, make, norm):
    model, x, y = mlp
    x, y = x[:100], y[:100]
    np.testing.assert_array_equal(make(norm)(model, x, y, seed=0), x)


def test_batch_size_does_not_change_the_result(mlp):
    model, x, y = mlp
    x, y = x[:100], y[:100]
    attack = _attack("linf", random_start=False)
    small_batches = attack(model, x, y, batch_size=7)
    one_batch = attack(model, x, y, batch_size=1000)
    np.testing.assert_allclose(small_batches, one_batch, atol=1e-6)


# --- the norm-specific pieces ------------------------------------------------


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("seed_kind", ["int", "generator"])
def test_random_delta_inside_ball_and_not_zero(norm, seed_kind):
    epsilon = EPSILON[norm]
    seed = 3 if seed_kind == "int" else keras.random.SeedGenerator(3)
    x = keras.ops.zeros((2000, 8, 8, 1))
    delta = keras.ops.convert_to_numpy(_attack(norm).random_delta(x, seed))
    assert delta.shape == (2000, 8, 8, 1)
    _assert_in_ball(delta, np.zeros_like(delta), epsilon, norm)
    distances = _distances(delta, np.zeros_like(delta), norm)
    assert np.all(distances > 0)
    # Examples get different perturbations.
    assert len(np.unique(delta.reshape(2000, -1), axis=0)) == 2000
    if norm == "linf":
        assert delta.min() < -0.99 * epsilon and delta.max() > 0.99 * epsilon
        assert abs(delta.mean()) < 0.01 * epsilon
        # Uniform on [-ε, ε]: a quarter of the coordinates below -ε/2.
        assert np.mean(delta < -epsilon / 2) == pytest.approx(0.25, abs=0.01)
    else:
        # Uniform in the 64-dimensional ball: P(‖δ‖ <= rε) = r**64.
        assert np.mean(distances <= 0.98 * epsilon) == pytest.approx(0.98**64, abs=0.05)


def test_project():
    x = np.full((2, 4), 0.5, "float32")
    far = np.array([[0.9, 0.1, 0.55, -3.0], [0.5, 0.5, 0.5, 0.52]], "float32")
    linf = keras.ops.convert_to_numpy(_attack("linf", epsilon=0.1).project(far, x))
    np.testing.assert_allclose(
        linf, [[0.6, 0.4, 0.55, 0.4], [0.5, 0.5, 0.5, 0.52]], atol=1e-7
    )
    l2 = keras.ops.convert_to_numpy(_attack("l2", epsilon=0.1).project(far, x))
    np.testing.assert_allclose(np.linalg.norm(l2[0] - x[0]), 0.1, rtol=1e-5)
    direction = (far[0] - x[0]) / np.linalg.norm(far[0] - x[0])
    np.testing.assert_allclose(l2[0], x[0] + 0.1 * direction, atol=1e-6)
    # Inside the ball: unchanged.
    np.testing.assert_allclose(l2[1], far[1], atol=1e-7)
    # Clipped into value_range after the projection.
    wide = _attack("l2", epsilon=10.0, value_range=(0.0, 1.0))
    clipped = keras.ops.convert_to_numpy(wide.project(far, x))
    np.testing.assert_allclose(clipped[0], [0.9, 0.1, 0.55, 0.0], atol=1e-7)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_ascent_direction(norm):
    gradient = np.array([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0]], "float32")
    direction = keras.ops.convert_to_numpy(_attack(norm).ascent_direction(gradient))
    if norm == "linf":
        np.testing.assert_array_equal(direction, np.sign(gradient))
    else:
        np.testing.assert_allclose(direction[0], [0.6, -0.8, 0.0], atol=1e-7)
        # A zero gradient gives a zero step, not NaN.
        np.testing.assert_array_equal(direction[1], 0.0)


# --- targets -----------------------------------------------------------------


def test_sparse_column_and_one_hot_labels_give_the_same_result(mlp):
    model, x, y = mlp
    x, y = x[:100], y[:100]
    attack = _attack("linf", random_start=False)
    sparse = attack(model, x, y)
    for targets in (y[:, None], y.astype("int32"), np.eye(10, dtype="float32")[y]):
        np.testing.assert_array_equal(attack(model, x, targets), sparse)


def test_soft_targets(mlp, accuracy, clean_accuracy):
    model, x, y = mlp
    soft = np.full((len(y), 10), 0.2 / 9, "float32")
    soft[np.arange(len(y)), y] = 0.8
    attack = _attack("linf", random_start=False)
    x_adv = attack(model, x, soft)
    _assert_in_ball(x_adv, x, EPSILON["linf"], "linf")
    # Observed: clean 0.962, soft targets 0.740, sparse labels 0.544.
    assert accuracy(model, x_adv, y) < clean_accuracy - 0.1
    # The soft targets themselves are attacked, not their arg-max.
    assert not np.allclose(x_adv, attack(model, x, y))


def test_targets_with_the_wrong_number_of_classes_raise(mlp):
    model, x, y = mlp
    with pytest.raises(ValueError, match=r"`y_true`.*Received: y_true.shape="):
        _attack("linf")(model, x, np.eye(5, dtype="float32")[y % 5])


# --- randomness and train mode ------------------------------------------------


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_seeding(mlp, norm):
    model, x, y = mlp
    x, y = x[:100], y[:100]
    attack = _attack(norm, random_start=True, steps=2)
    first = attack(model, x, y, seed=1)
    np.testing.assert_array_equal(attack(model, x, y, seed=1), first)
    other = attack(model, x, y, seed=2)
    assert not np.allclose(other, first)
    assert np.mean(np.any((other != first).reshape(len(x), -1), axis=1)) > 0.9
    deterministic = _attack(norm, random_start=False, steps=2)
    np.testing.assert_array_equal(
        deterministic(model, x, y, seed=1), deterministic(model, x, y, seed=2)
    )


def test_training_mode_uses_batch_statistics(digits):
    _, (x, y) = digits
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(10),
        ]
    )
    moving_mean = model.layers[2].moving_mean
    attack = _attack("linf", random_start=False, steps=5)

    before = keras.ops.convert_to_numpy(moving_mean).copy()
    eval_mode = attack(model, x, y, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(moving_mean), before)

    train_mode = attack(model, x, y, training=True)
    _assert_in_ball(train_mode, x, EPSILON["linf"], "linf")
    assert train_mode.min() >= 0.0 and train_mode.max() <= 1.0
    assert not np.allclose(train_mode, eval_mode)
    # As documented, Keras updates the moving statistics in train mode.
    assert not np.allclose(keras.ops.convert_to_numpy(moving_mean), before)


# --- invalid arguments -------------------------------------------------------

VALID = {"epsilon": 0.1, "step_size": 0.01, "steps": 3}
INVALID = [
    ("epsilon", -0.1),
    ("epsilon", float("nan")),
    ("epsilon", "ab"),
    ("step_size", 0.0),
    ("step_size", -0.01),
    ("norm", "l1"),
    ("norm", "Linf"),
    ("value_range", (1.0, 0.0)),
    ("value_range", (0.0, 0.0)),
    ("value_range", (0.0, float("nan"))),
    ("value_range", "ab"),
    ("value_range", (0.0, 1.0, 2.0)),
    ("random_start", 1),
    ("random_start", "yes"),
]


@pytest.mark.parametrize("cls", [GradientAttack, PGD, FGSM])
@pytest.mark.parametrize(
    ("name", "value"), INVALID, ids=[f"{n}={v!r}" for n, v in INVALID]
)
def test_invalid_constructor_arguments_raise(cls, name, value):
    kwargs = dict(VALID) if cls is GradientAttack else {"epsilon": 0.1}
    kwargs[name] = value
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}="):
        cls(**kwargs)


@pytest.mark.parametrize("steps", [0, -1, 2.5, True, "3", None])
def test_invalid_steps_raise(steps):
    with pytest.raises(ValueError, match=r"`steps`.*Received: steps="):
        GradientAttack(**{**VALID, "steps": steps})


def test_inputs_outside_value_range_raise(mlp):
    model, x, y = mlp
    attack = _attack("linf")
    with pytest.raises(ValueError, match=r"`x`.*value_range.*Received: x"):
        attack(model, x + 2.0, y)
    with pytest.raises(ValueError, match=r"`x`.*value_range.*Received: x"):
        attack(model, x - 0.5, y)
    scaled = _attack("linf", value_range=(-1.0, 1.0))
    with pytest.raises(ValueError, match=r"`x`.*value_range.*Received: x"):
        scaled(model, x + 2.0, y)


def test_mismatched_lengths_raise(mlp):
    model, x, y = mlp
    with pytest.raises(ValueError, match=r"`x` and `y`.*Received: len\(x\)=450"):
        _attack("linf")(model, x, y[:-1])


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, None])
def test_invalid_batch_size_raises(mlp, batch_size):
    model, x, y = mlp
    with pytest.raises(ValueError, match=r"`batch_size`.*Received: batch_size="):
        _attack("linf")(model, x, y, batch_size=batch_size)


def test_calling_an_attack_again_does_not_trace_again():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(300, 6)).astype("float32")
    y = rng.integers(0, 3, size=300)
    attack = PGD(epsilon=0.1, steps=2)
    runs = [attack(model, x, y, batch_size=128, seed=1) for _ in range(6)]
    # Three batches per call (the last one partial), six calls: one trace
    # (on JAX too: the partial batch runs padded to 128).
    run, *others = _compiled_runners(model)
    assert not others
    assert run.experimental_get_tracing_count() == expected_traces((300, 128))
    # The seed is reset on every call: the same seed, the same result.
    for other in runs[1:]:
        np.testing.assert_array_equal(other, runs[0])
    assert not np.array_equal(attack(model, x, y, seed=2), runs[0])
    # A new ε is a new input of the same trace, not a stale constant.
    attack.epsilon = 0.2
    wider = attack(model, x, y, seed=1)
    assert np.abs(wider - x).max() > 0.1 + 1e-3
    assert np.abs(wider - x).max() <= 0.2 + 1e-6
    # (The last two calls ran batches of 256 and 44.)
    assert run.experimental_get_tracing_count() == expected_traces(
        (300, 128), (300, 256)
    )
    # Other settings get their own trace.
    PGD(epsilon=0.1, steps=3)(model, x, y, seed=1)
    assert len(_compiled_runners(model)) == 2


def test_batches_of_any_size_give_the_full_batch_results_with_few_traces():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 6)).astype("float32")
    y = rng.integers(0, 3, size=8)
    attack = PGD(epsilon=0.1, steps=3, random_start=False)
    full = attack(model, x, y)
    for count in (5, 6, 7, 1):
        np.testing.assert_allclose(attack(model, x[:count], y[:count]), full[:count])
    (run,) = _compiled_runners(model)
    # Batches of 5 to 8 examples share one trace on JAX too (padded to 8).
    calls = [(count, 256) for count in (8, 5, 6, 7, 1)]
    assert (
        run.experimental_get_tracing_count()
        == expected_traces(*calls)
        == (1 if keras.backend.backend() != "jax" else 2)
    )


def test_an_attack_in_train_mode_sees_only_its_batch():
    # Batch normalisation in train mode normalises by the batch's
    # statistics: a partial batch must not be padded with other examples.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3),
        ]
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 6)).astype("float32")
    y = rng.integers(0, 3, size=5)
    attack = PGD(epsilon=0.1, steps=3, random_start=False)
    called = attack(model, x, y, training=True)
    eager = attack.perturb(lambda inputs: model(inputs, training=True), x, y)
    np.testing.assert_allclose(called, ops.convert_to_numpy(eager), atol=1e-6)


def test_predict_logits_equals_the_model_on_any_batch_size_with_few_traces():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(0).uniform(size=(11, 6)).astype("float32")
    for count, batch_size in ((11, 4), (7, 8), (5, 8), (1, 8)):
        logits = kr.attacks.base.predict_logits(model, x[:count], batch_size)
        assert logits.dtype == np.float32 and logits.shape == (count, 3)
        eager = ops.convert_to_numpy(model(x[:count], training=False))
        np.testing.assert_allclose(logits, eager, rtol=1e-6, atol=1e-6)
    (forward,) = kr.attacks.base._FORWARDS[model].values()
    calls = [(11, 4), (7, 8), (5, 8), (1, 8)]
    # On JAX: batches of 4 (and 3, padded), 8 (7 and 5, padded) and 1.
    assert forward.experimental_get_tracing_count() == expected_traces(*calls)
    # Later training is seen, without tracing again.
    model.layers[-1].bias.assign(np.array([1.0, -1.0, 3.0], "float32"))
    np.testing.assert_allclose(
        kr.attacks.base.predict_logits(model, x[:4]),
        ops.convert_to_numpy(model(x[:4], training=False)),
        rtol=1e-6,
        atol=1e-6,
    )
    assert forward.experimental_get_tracing_count() == expected_traces(*calls)
    assert kr.attacks.base.predict_logits(model, x[:0]).shape == (0, 3)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, None])
def test_predict_logits_refuses_a_bad_batch_size(mlp, batch_size):
    model, x, _ = mlp
    with pytest.raises(ValueError, match=r"`batch_size`.*Received: batch_size="):
        kr.attacks.base.predict_logits(model, x[:4], batch_size)


def test_an_evaluation_runs_every_batch_at_one_compiled_size(mlp):
    # The attacks of an evaluation run on fewer examples each (those still
    # robust), and APGD-T within a batch on those its last target class did
    # not fool: on JAX all of them run padded to the evaluation's size, so
    # each function compiles once, as a graph function traces once.
    model, x, y = mlp
    model = keras.models.clone_model(model)  # its own compiled functions
    model.set_weights(mlp[0].get_weights())
    attacks = [
        PGD(epsilon=0.1, steps=2),
        kr.attacks.APGD(
            epsilon=0.1, loss="dlr", targeted=True, num_target_classes=3, steps=5
        ),
    ]
    report = kr.evaluation.evaluate_robustness(
        model, (x[:100], y[:100]), epsilon=0.1, attacks=attacks, checks=False, verbose=0
    )
    # Each attack ran on fewer examples than the one before it.
    assert 0 < report["per_attack"]["apgd"] < report["per_attack"]["pgd"] < 0.97
    runs = _compiled_runners(model) + list(kr.attacks.base._FORWARDS[model].values())
    assert len(runs) == 3
    assert [run.experimental_get_tracing_count() for run in runs] == [1, 1, 1]


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's padding")
def test_padded_batches_sets_one_size_and_the_outer_scope_wins():
    from keras_robust.backend.jax.gradients import padded_batches, padded_size

    assert [padded_size(n) for n in (1, 5, 8, 9, 300)] == [1, 8, 8, 16, 512]
    with padded_batches(256, 1000):
        assert [padded_size(n) for n in (1, 100, 256, 300)] == [256, 256, 256, 512]
        with padded_batches(256, 10):  # an attack on fewer examples
            assert padded_size(3) == 256
    with padded_batches(256, 10):  # fewer examples than a batch
        assert [padded_size(n) for n in (1, 10, 11)] == [16, 16, 16]
    with padded_batches(100, 1000):
        assert [padded_size(n) for n in (7, 100)] == [100, 100]
    assert padded_size(5) == 8


def test_compiled_functions_do_not_keep_their_model_alive():
    # The compiled attacks and forward passes are cached per model, weakly:
    # once the user drops a model, it and its functions are freed.
    def evaluate_a_new_model():
        model = keras.Sequential(
            [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
        )
        x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
        # Its own predictions as labels: every example is attacked.
        y = ops.convert_to_numpy(ops.argmax(model(x), axis=-1))
        kr.evaluation.evaluate_robustness(
            model,
            (x, y),
            epsilon=0.1,
            attacks=[PGD(epsilon=0.1, steps=2), kr.attacks.Square(0.1, queries=4)],
            checks=False,
            verbose=0,
        )
        assert model in kr.attacks.base._RUNNERS and model in kr.attacks.base._FORWARDS
        return weakref.ref(model)

    reference = evaluate_a_new_model()
    gc.collect()
    assert reference() is None


class BuiltOnFirstCall(keras.Model):
    """A subclassed model: its weights exist only once it has been called."""

    def __init__(self):
        super().__init__()
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(10)

    def call(self, inputs):
        return self.dense(self.flatten(inputs))


def test_compiled_functions_see_later_weights_of_a_model_they_built(mlp):
    # An unbuilt model is built by the first attack or prediction; the
    # compiled functions then read its variables (on JAX, as arguments),
    # not the values they had at that first call.
    _, x, y = mlp
    x, y = x[:16], y[:16]
    keras.utils.set_random_seed(0)
    model = BuiltOnFirstCall()
    attack = PGD(epsilon=0.1, steps=3, random_start=False)
    base = kr.attacks.base
    attack(model, x, y)
    base.predict_logits(model, x)
    base.input_gradients(model, x, y)
    assert model.built
    rng = np.random.default_rng(0)
    model.set_weights(
        [rng.normal(size=w.shape).astype("float32") for w in model.get_weights()]
    )

    def eager(inputs):
        return model(inputs, training=False)

    np.testing.assert_allclose(
        base.predict_logits(model, x),
        ops.convert_to_numpy(eager(x)),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        attack(model, x, y),
        ops.convert_to_numpy(attack.perturb(eager, x, y)),
        atol=1e-6,
    )
    _, gradient = value_and_gradient(
        lambda inputs: kr.classification.cross_entropy_with_logits(y, eager(inputs)), x
    )
    np.testing.assert_allclose(
        base.input_gradients(model, x, y), gradient, rtol=1e-4, atol=1e-6
    )


def test_input_gradients_equal_the_eager_gradient_on_any_batch_size(mlp):
    model, x, y = mlp
    model = keras.models.clone_model(model)  # its own compiled functions
    model.set_weights(mlp[0].get_weights())
    calls = [(20, 8), (7, 8), (1, 256)]
    for count, batch_size in calls:
        _, eager = value_and_gradient(
            lambda inputs, labels=y[:count]: (
                kr.classification.cross_entropy_with_logits(
                    labels, model(inputs, training=False)
                )
            ),
            x[:count],
        )
        gradient = kr.attacks.base.input_gradients(
            model, x[:count], y[:count], batch_size
        )
        assert gradient.dtype == np.float32 and gradient.shape == x[:count].shape
        np.testing.assert_allclose(gradient, eager, rtol=1e-4, atol=1e-6)
    (compiled,) = kr.attacks.base._GRADIENTS[model].values()
    assert compiled.experimental_get_tracing_count() == expected_traces(*calls)
    with pytest.raises(ValueError, match=r"`batch_size`.*Received: batch_size=0"):
        kr.attacks.base.input_gradients(model, x[:4], y[:4], 0)


def test_output_shape_gives_the_shape_and_on_jax_runs_nothing():
    class Noisy(keras.layers.Layer):
        """Adds noise even in eval mode: calling it advances its seed."""

        def __init__(self):
            super().__init__()
            self.seed = keras.random.SeedGenerator(1)

        def call(self, inputs):
            return inputs + keras.random.normal(ops.shape(inputs), seed=self.seed)

    noisy = Noisy()
    model = keras.Sequential([keras.Input((6,)), noisy, keras.layers.Dense(3)])
    x = np.zeros((1, 6), "float32")
    state = ops.convert_to_numpy(noisy.seed.state.value).copy()
    assert kr.backend.output_shape(lambda inputs: model(inputs), x) == (1, 3)
    if keras.backend.backend() == "jax":
        # Traced abstractly: the seed did not move, and no tracer leaked
        # into it (the model still runs).
        np.testing.assert_array_equal(
            ops.convert_to_numpy(noisy.seed.state.value), state
        )
        assert model(x).shape == (1, 3)


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="JAX compiles eager calls per shape"
)
def test_attacks_and_predictions_never_call_the_model_eagerly_on_jax(mlp):
    # Called eagerly, a model on JAX compiles each of its operations for
    # every new batch size: the attacks, predictions and gradients run it
    # compiled only, and learn its number of classes by tracing it abstractly.
    import jax

    _, x, y = mlp
    x, y = x[:40], y[:40]
    concrete = []

    class Recording(keras.layers.Layer):
        def call(self, inputs):
            concrete.append(not isinstance(inputs, jax.core.Tracer))
            return inputs

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            Recording(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    concrete.clear()  # Building the model called it on symbolic inputs.
    for attack in (
        PGD(epsilon=0.1, steps=2),
        kr.attacks.APGD(epsilon=0.1, steps=2),
        kr.attacks.Square(0.1, queries=5),
    ):
        attack(model, x, y, batch_size=16, seed=0)
    kr.attacks.base.predict_logits(model, x, 16)
    kr.attacks.base.input_gradients(model, x, y, 16)
    assert concrete and not any(concrete)
    # The evaluation's checks call it eagerly on purpose, twice: the
    # randomness check compares two calls as the user makes them.
    concrete.clear()
    kr.evaluation.check_model(model, x, y, epsilon=0.1)
    assert sum(concrete) == 2


def _compiled_runners(model):
    return [run for _, run in kr.attacks.base._RUNNERS[model].values()]


def test_attacks_at_many_epsilons_share_one_trace_and_match_fresh_ones():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    rng = np.random.default_rng(1)
    x = rng.uniform(0.3, 0.7, size=(64, 4, 4, 1)).astype("float32")
    y = rng.integers(0, 3, size=64)
    epsilons = [0.02, 0.05, 0.1, 0.3]
    for count, make in enumerate(
        (
            lambda e: PGD(epsilon=e, step_size=e / 4, steps=5),
            lambda e: kr.attacks.APGD(epsilon=e, steps=5),
            lambda e: kr.attacks.Square(epsilon=e, queries=20),
        ),
        start=1,
    ):
        results = [make(e)(model, x, y, seed=3) for e in epsilons]
        # One new compiled function per kind of attack, traced once.
        runs = _compiled_runners(model)
        assert len(runs) == count
        assert runs[-1].experimental_get_tracing_count() == expected_traces((64, 256))
        for epsilon, x_adv in zip(epsilons, results, strict=True):
            assert np.abs(x_adv - x).max() <= epsilon + 1e-6
        # The same as the attack compiled with ε as a constant.
        epsilon = epsilons[2]
        attack = make(epsilon)

        def model_fn(inputs):
            return model(inputs, training=False)

        constant = attack.perturb(
            model_fn,
            ops.convert_to_tensor(x),
            ops.convert_to_tensor(y),
            seed=keras.random.SeedGenerator(3),
        )
        np.testing.assert_allclose(results[2], constant, atol=1e-6)

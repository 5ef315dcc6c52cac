"""AdversarialModel: fit() logs, objectives, robustness gained, saving, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr

EPSILON = 0.1


@pytest.fixture(scope="module")
def digits():
    return kr.data.load_digits()


def _base(num_classes=10, batch_norm=False):
    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten()]
    layers.append(keras.layers.Dense(64, activation="relu"))
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(num_classes))
    return keras.Sequential(layers)


def _adversarial(objective="madry", steps=5, epsilon=EPSILON, **kwargs):
    keras.utils.set_random_seed(0)
    model = kr.AdversarialModel(
        _base(batch_norm=kwargs.pop("batch_norm", False)),
        attack=kr.attacks.PGD(epsilon=epsilon, steps=steps),
        objective=objective,
        seed=0,
        **kwargs,
    )
    return model


def _compile(model, **kwargs):
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
        **kwargs,
    )
    return model


def _pgd_accuracy(model, x, y, steps=10, epsilon=EPSILON):
    x_adv = kr.attacks.PGD(epsilon=epsilon, steps=steps)(model, x, y, seed=1)
    return float(np.mean(model.predict(x_adv, verbose=0).argmax(-1) == y))


def test_fit_logs_clean_and_robust_metrics(digits):
    (x, y), (x_test, y_test) = digits
    model = _compile(_adversarial())
    history = model.fit(
        x, y, epochs=2, batch_size=64, validation_data=(x_test, y_test), verbose=0
    )
    assert set(history.history) == {
        "loss",
        "accuracy",
        "robust_accuracy",
        "val_loss",
        "val_accuracy",
        "val_robust_accuracy",
    }
    for key in ("accuracy", "val_accuracy"):
        robust = history.history[key.replace("accuracy", "robust_accuracy")]
        # Robust accuracy can never exceed clean accuracy by much on a PGD attack.
        assert robust[-1] <= history.history[key][-1] + 0.05
    assert history.history["val_accuracy"][-1] > 0.5


def test_adversarial_training_gives_robustness_standard_training_lacks(digits):
    (x, y), (x_test, y_test) = digits
    epochs = 8
    keras.utils.set_random_seed(0)
    standard = _base()
    standard.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
    )
    standard.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    adversarial = _compile(_adversarial(eval_attack=None, epsilon=0.2))
    adversarial.fit(x, y, epochs=epochs, batch_size=64, verbose=0)

    standard_robust = _pgd_accuracy(standard, x_test, y_test, epsilon=0.2)
    adversarial_robust = _pgd_accuracy(adversarial, x_test, y_test, epsilon=0.2)
    # Observed (PGD-10, L-inf eps 0.2, 8 epochs): standard training 0.02,
    # PGD-5 adversarial training 0.34, at clean accuracies 0.95 and 0.85.
    assert standard_robust < 0.1
    assert adversarial_robust > standard_robust + 0.2
    assert adversarial.evaluate(x_test, y_test, verbose=0)[1] > 0.75


@pytest.mark.parametrize("objective", ["trades", "mart"])
def test_trades_and_mart_train_robust_models(objective, digits):
    (x, y), (x_test, y_test) = digits
    model = _compile(_adversarial(objective, eval_attack=None))
    assert model.attack_mode == "eval"
    history = model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.75
    # Standard training reaches about 0.5 here (PGD-10, eps 0.1).
    assert _pgd_accuracy(model, x_test, y_test) > 0.6


def test_madry_attacks_in_train_mode_by_default():
    assert kr.AdversarialModel(_base()).attack_mode == "train"
    model = kr.AdversarialModel(_base(), attack_mode="eval")
    assert model.attack_mode == "eval"


def test_eval_attack_none_skips_robust_metrics(digits):
    (x, y), (x_test, y_test) = digits
    model = _compile(_adversarial(eval_attack=None))
    history = model.fit(
        x[:256],
        y[:256],
        epochs=1,
        batch_size=64,
        validation_data=(x_test, y_test),
        verbose=0,
    )
    assert "val_robust_accuracy" not in history.history
    assert "robust_accuracy" in history.history


def test_default_eval_attack_is_pgd10_with_the_training_budget():
    model = kr.AdversarialModel(_base(), attack=kr.attacks.FGSM(epsilon=0.2, norm="l2"))
    assert isinstance(model.eval_attack, kr.attacks.PGD)
    assert model.eval_attack.steps == 10
    assert model.eval_attack.epsilon == 0.2
    assert model.eval_attack.norm == "l2"


def test_checkpoint_keeps_the_most_robust_epoch_and_reloads(digits, tmp_path):
    (x, y), (x_test, y_test) = digits
    model = _compile(_adversarial(steps=3))
    path = tmp_path / "best.keras"
    checkpoint = keras.callbacks.ModelCheckpoint(
        path, monitor="val_robust_accuracy", mode="max", save_best_only=True
    )
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=64,
        validation_data=(x_test, y_test),
        callbacks=[checkpoint],
        verbose=0,
    )
    best = keras.saving.load_model(path)
    assert isinstance(best, kr.AdversarialModel)
    assert isinstance(best.objective, kr.training.Madry)
    assert best.attack.get_config() == model.attack.get_config()
    best_epoch_value = max(history.history["val_robust_accuracy"])
    # Re-evaluating the reloaded best model (same seed, same attack) gives back
    # the logged best robust accuracy within attack randomness.
    reloaded_value = best.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert abs(reloaded_value["robust_accuracy"] - best_epoch_value) < 0.05


def test_keras_file_round_trip_and_load_weights(digits, tmp_path):
    (x, y), _ = digits
    model = _compile(_adversarial(objective="trades", beta=3.0, steps=2))
    model.fit(x[:128], y[:128], epochs=1, batch_size=64, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.get_config()["beta"] == 3.0
    assert restored.built
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) > 0
    assert isinstance(restored.objective, kr.training.TRADES)
    np.testing.assert_allclose(
        restored.predict(x[:32], verbose=0),
        model.predict(x[:32], verbose=0),
        rtol=1e-6,
    )
    weights = tmp_path / "model.weights.h5"
    model.save_weights(weights)
    fresh = kr.AdversarialModel(_base(), objective="trades")
    fresh.build((None, 8, 8, 1))
    fresh.load_weights(weights)
    np.testing.assert_allclose(
        fresh.predict(x[:32], verbose=0),
        model.predict(x[:32], verbose=0),
        rtol=1e-6,
    )


def test_call_is_the_clean_base_model(digits):
    (x, _), _ = digits
    base = _base()
    model = kr.AdversarialModel(base)
    np.testing.assert_allclose(
        model.predict(x[:16], verbose=0), base.predict(x[:16], verbose=0)
    )


# float16 (with loss scaling) runs with the slow tests: bfloat16 takes the
# same code path without the loss-scale optimizer.
@pytest.mark.parametrize(
    "policy", [pytest.param("mixed_float16", marks=pytest.mark.slow), "mixed_bfloat16"]
)
def test_mixed_precision(policy, digits, restore_dtype_policy):
    (x, y), (x_test, y_test) = digits
    keras.config.set_dtype_policy(policy)
    model = _compile(_adversarial(eval_attack=None))
    assert model.base_model.layers[-1].compute_dtype == policy.split("_")[1]
    history = model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.6


@pytest.mark.slow
def test_jit_compile_trains_like_graph_mode(digits):
    (x, y), _ = digits
    results = {}
    for jit in (False, True):
        model = _compile(_adversarial(eval_attack=None), jit_compile=jit)
        history = model.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False)
        results[jit] = history.history["loss"]
    np.testing.assert_allclose(results[True], results[False], rtol=0.05)


def test_batch_norm_model_in_train_and_eval_attack_modes(digits):
    (x, y), _ = digits
    for mode in ("train", "eval"):
        model = _compile(
            _adversarial(batch_norm=True, attack_mode=mode, eval_attack=None)
        )
        bn = model.base_model.layers[-2]
        before = bn.moving_mean.numpy().copy()
        history = model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert not np.allclose(bn.moving_mean.numpy(), before)


def test_sample_weight_and_one_hot_labels(digits):
    (x, y), _ = digits
    model = _compile(_adversarial(eval_attack=None))
    weights = np.where(y == 0, 0.0, 1.0).astype("float32")
    history = model.fit(
        x, np.eye(10)[y], sample_weight=weights, epochs=1, batch_size=64, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.tensorflow_only(
    reason="an in-graph check: a compiled JAX step cannot fail (docs/backends.md)"
)
def test_inputs_outside_value_range_fail_before_the_step(digits):
    (x, y), _ = digits
    model = _compile(_adversarial(eval_attack=None))
    with pytest.raises(ValueError, match=r"`x` has values outside value_range.*max=16"):
        model.fit(x[:64] * 16, y[:64], epochs=1, batch_size=64, verbose=0)

    # Batches only the compiled step sees fail its assertion, same message.
    def batches():
        yield x[:64] * 16, y[:64]

    with pytest.raises(tf.errors.InvalidArgumentError, match="value_range"):
        model.fit(batches(), epochs=1, steps_per_epoch=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"objective": "fast"}, "Received: objective='fast'"),
        ({"beta": -1.0}, "Received: beta=-1.0"),
        ({"attack_mode": "test"}, "Received: attack_mode='test'"),
        ({"attack": "pgd"}, "Received: attack='pgd'"),
        ({"eval_attack": 3}, "Received: eval_attack=3"),
        ({"clean_metrics": "yes"}, "Received: clean_metrics='yes'"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kr.AdversarialModel(_base(), **kwargs)


def test_base_model_must_output_one_logit_vector_per_example():
    with pytest.raises(ValueError, match="Received: base_model=None"):
        kr.AdversarialModel(None)
    sequence_model = keras.Sequential([keras.Input((5, 3)), keras.layers.Dense(4)])
    with pytest.raises(
        ValueError, match=r"base_model with output shape \(None, 5, 4\)"
    ):
        kr.AdversarialModel(sequence_model)
    inputs = keras.Input((3,))
    two_heads = keras.Model(inputs, [keras.layers.Dense(2)(inputs)] * 2)
    with pytest.raises(ValueError, match="base_model with 2 outputs"):
        kr.AdversarialModel(two_heads)


def test_subclassed_base_model_output_is_checked_when_traced():
    class Scalar(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    model = kr.AdversarialModel(Scalar(), attack=kr.attacks.PGD(0.1, steps=1))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).uniform(size=(8, 3)).astype("float32")
    with pytest.raises(ValueError, match="output shape"):
        model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0)


def _adr_fit(steps_per_execution):
    (x, y), _ = kr.data.load_digits()
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10),
        ]
    )
    model = kr.AdversarialModel(
        base, attack=kr.attacks.PGD(0.05, steps=2), eval_attack=None, seed=0
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=kr.losses.ADRLoss(
            temperature=kr.schedules.CosineAnnealing(2.5, 2.0),
            interpolation=kr.schedules.CosineAnnealing(0.7, 0.95),
        ),
        steps_per_execution=steps_per_execution,
    )
    history = model.fit(
        x[:320],
        y[:320],
        epochs=2,
        batch_size=32,
        shuffle=False,
        verbose=0,
        callbacks=[kr.callbacks.EMATeacher(0.9)],
    )
    return model, history.history


def test_steps_per_execution_changes_nothing_but_speed():
    """Several steps per compiled call (3, which does not divide the 10 steps
    of an epoch): the teacher's EMA, the schedules and the logged values are
    those of one step per call."""
    one, one_history = _adr_fit(1)
    three, three_history = _adr_fit(3)
    assert three_history == one_history
    assert one_history["temperature"][0] != one_history["temperature"][1]
    for a, b in zip(
        one.teacher.get_weights(), three.teacher.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(one.get_weights(), three.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

"""The roles of the training step, exercised from outside the package.

A toy objective and toy targets defined here (not in keras_robust) train
through the unchanged step, which must do exactly the data flow of
docs/training.md; a fixed teacher; any attack as the training or the
evaluation attack; schedules with a fixed horizon.
"""

import math

import keras
import numpy as np
import pytest

import keras_robust as kr

from ..backend_tools import loss_and_weight_gradients

EPSILON = 0.1


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_test, y_test) = kr.data.load_digits()
    return x[:256], y[:256], x_test[:128], y_test[:128]


def _base(num_classes=10, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(num_classes),
        ]
    )


@keras.saving.register_keras_serializable(package="tests")
class CleanAndAdversarial(kr.training.Objective):
    """Toy objective: a weighted sum of the compiled loss on x and on x'.

    The attack maximises the margin loss from the clean point itself.
    """

    name = "clean_and_adversarial"
    attack_mode = "eval"

    def __init__(self, weight=0.5):
        self.weight = weight
        self.traced = []

    def attack_loss(self, forward, batch, targets):
        self.traced.append("attack_loss")
        return lambda logits: kr.attacks.margin_loss(logits, targets)

    def attack_start(self, batch, seed):
        self.traced.append("attack_start")
        return batch.x

    def loss(self, model, batch, x_adv, targets):
        self.traced.append("loss")
        clean = model.logits(batch.x, training=True)
        adv = model.logits(x_adv, training=True)
        loss = (1.0 - self.weight) * model.compute_loss(
            x=batch.x, y=targets, y_pred=clean, sample_weight=batch.sample_weight
        ) + self.weight * model.compute_loss(
            x=batch.x, y=targets, y_pred=adv, sample_weight=batch.sample_weight
        )
        return kr.training.ObjectiveOutput(loss, adv, clean)

    def get_config(self):
        return {"weight": self.weight}


@keras.saving.register_keras_serializable(package="tests")
class Smoothed(kr.training.Targets):
    """Toy targets: label smoothing, logged."""

    def __init__(self, smoothing=0.2):
        self.smoothing = smoothing

    def before_attack(self, batch, teacher):
        one_hot = keras.ops.one_hot(keras.ops.cast(batch.y, "int32"), 10)
        targets = (1.0 - self.smoothing) * one_hot + self.smoothing / 10
        return targets, {
            "smoothing": keras.ops.convert_to_tensor(self.smoothing, "float32")
        }

    def get_config(self):
        return {"smoothing": self.smoothing}


def _toy_model(**kwargs):
    return kr.AdversarialModel(
        _base(),
        attack=kr.attacks.PGD(epsilon=EPSILON, step_size=0.03, steps=3),
        objective=CleanAndAdversarial(0.7),
        targets=Smoothed(0.2),
        eval_attack=None,
        **kwargs,
    )


def test_toy_objective_and_targets_step_is_the_documented_data_flow(digits):
    x, y, _, _ = digits
    x, y = x[:64], y[:64]
    learning_rate = 0.5
    model = _toy_model()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=kr.losses.SoftTargetCrossentropy(),
    )
    initial = [w.copy() for w in model.base_model.get_weights()]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert {"attack_loss", "attack_start", "loss"} <= set(model.objective.traced)
    assert logs["smoothing"] == pytest.approx(0.2)

    # The same step by hand, from the same weights.
    reference = _base()
    reference.set_weights(initial)
    targets = (1 - 0.2) * np.eye(10)[y] + 0.02

    def forward(inputs):
        return keras.ops.cast(reference(inputs, training=False), "float32")

    x_adv = kr.attacks.PGD(epsilon=EPSILON, step_size=0.03, steps=3).perturb(
        forward,
        x,
        targets.astype("float32"),
        loss_fn=lambda logits: kr.attacks.margin_loss(logits, targets),
        start=x,
    )
    assert np.abs(np.asarray(x_adv) - x).max() <= EPSILON + 1e-6
    assert np.abs(np.asarray(x_adv) - x).max() > EPSILON / 2

    def soft_ce(logits):
        log_p = keras.ops.log_softmax(logits)
        return keras.ops.mean(-keras.ops.sum(targets * log_p, axis=-1))

    def toy_loss():
        return 0.3 * soft_ce(reference(x, training=True)) + 0.7 * soft_ce(
            reference(x_adv, training=True)
        )

    loss, gradients = loss_and_weight_gradients(toy_loss, reference.trainable_variables)
    assert logs["loss"] == pytest.approx(loss, rel=1e-5)
    for weight, start, gradient in zip(
        model.base_model.get_weights(), initial, gradients, strict=True
    ):
        np.testing.assert_allclose(
            weight, start - learning_rate * gradient, rtol=1e-4, atol=1e-6
        )


def test_toy_objective_trains_saves_and_reloads(digits, tmp_path):
    x, y, x_test, y_test = digits
    model = _toy_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] - 0.3
    assert history["accuracy"][-1] > 0.7
    assert history["smoothing"][-1] == pytest.approx(0.2)
    path = tmp_path / "toy.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.objective, CleanAndAdversarial)
    assert restored.objective.weight == 0.7
    assert isinstance(restored.targets, Smoothed)
    np.testing.assert_allclose(
        restored.predict(x_test, verbose=0), model.predict(x_test, verbose=0)
    )


@keras.saving.register_keras_serializable(package="tests")
class DistillOnAdversarial(kr.training.Targets):
    """Toy targets of the fixed-teacher kind: the teacher's view of x'."""

    requires_teacher = True
    teacher_hint = "pass teacher=FixedTeacher(model)"

    def after_attack(self, batch, x_adv, targets, teacher):
        one_hot = keras.ops.one_hot(keras.ops.cast(batch.y, "int32"), 10)
        return 0.5 * one_hot + 0.5 * keras.ops.softmax(teacher.logits(x_adv))


def test_fixed_teacher_is_consulted_never_updated_and_saved(digits, tmp_path):
    x, y, x_test, _ = digits
    trained = _base(seed=1)
    trained.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    trained.fit(x, y, epochs=3, verbose=0)
    frozen = [w.copy() for w in trained.get_weights()]
    model = kr.AdversarialModel(
        _base(),
        attack=kr.attacks.PGD(epsilon=EPSILON, steps=2),
        targets=DistillOnAdversarial(),
        teacher=kr.training.FixedTeacher(trained),
        eval_attack=None,
    )
    model.compile(optimizer="adam", loss=kr.losses.SoftTargetCrossentropy())
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    for got, expected in zip(model.teacher.get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert model.teacher is trained
    assert not {id(v) for v in model.teacher.weights} & {
        id(v) for v in model.trainable_variables
    }
    path = tmp_path / "fixed.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.teacher_role, kr.training.FixedTeacher)
    np.testing.assert_array_equal(
        restored.teacher.predict(x_test, verbose=0),
        trained.predict(x_test, verbose=0),
    )

    with pytest.raises(ValueError, match="student's 10 classes.*with 3 outputs"):
        kr.AdversarialModel(
            _base(), teacher=kr.training.FixedTeacher(_base(num_classes=3))
        )

    without = kr.AdversarialModel(
        _base(), attack=None, targets=DistillOnAdversarial(), eval_attack=None
    )
    without.compile(optimizer="adam", loss=kr.losses.SoftTargetCrossentropy())
    with pytest.raises(ValueError, match="needs a teacher: pass teacher="):
        without.fit(x, y, epochs=1, verbose=0)


ATTACKS = {
    "pgd": lambda: kr.attacks.PGD(epsilon=EPSILON, steps=3),
    "fgsm": lambda: kr.attacks.FGSM(epsilon=EPSILON),
    "apgd-ce": lambda: kr.attacks.APGD(epsilon=EPSILON, steps=4),
    "apgd-dlr": lambda: kr.attacks.APGD(epsilon=EPSILON, steps=4, loss="dlr"),
    "apgd-t": lambda: kr.attacks.APGD(
        epsilon=EPSILON, steps=3, loss="dlr", targeted=True, num_target_classes=2
    ),
    "square": lambda: kr.attacks.Square(epsilon=EPSILON, queries=10),
}


# PGD runs by default; the others (the same code paths) with the slow tests.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name != "pgd" else name
        for name in sorted(ATTACKS)
    ],
)
def test_every_attack_trains_and_evaluates(name, digits):
    x, y, x_test, y_test = digits
    model = kr.AdversarialModel(
        _base(), attack=ATTACKS[name](), eval_attack=ATTACKS[name](), seed=0
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
    )
    x_test, y_test = x_test[:64], y_test[:64]
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=64,
        validation_data=(x_test, y_test),
        verbose=0,
    ).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    # The evaluation attack ran and can only lower the accuracy.
    assert history["val_robust_accuracy"][-1] <= history["val_accuracy"][-1] + 1e-6
    results = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert results["robust_accuracy"] <= results["accuracy"] + 1e-6


def test_trades_uses_the_model_seed():
    x = np.random.default_rng(0).uniform(size=(32, 8, 8, 1)).astype("float32")
    y = np.arange(32) % 10

    def first_loss(seed):
        model = kr.AdversarialModel(
            _base(),
            attack=kr.attacks.PGD(epsilon=EPSILON, steps=2, restarts=2),
            objective="trades",
            eval_attack=None,
            seed=seed,
        )
        model.compile(optimizer="sgd", loss=kr.losses.SoftTargetCrossentropy())
        return model.train_on_batch(x, y, return_dict=True)["loss"]

    assert first_loss(0) == first_loss(0)
    assert first_loss(0) != first_loss(1)


def test_pgd_default_step_size_with_numpy_epsilon():
    attack = kr.attacks.PGD(epsilon=np.float32(8 / 255))
    assert attack.step_size == pytest.approx(2 / 255)
    assert kr.attacks.FGSM(epsilon=np.float64(0.1)).step_size == pytest.approx(0.1)


# --- schedules with a fixed horizon --------------------------------------------


def _adr_model():
    model = kr.AdversarialModel(
        _base(), attack=kr.attacks.PGD(epsilon=EPSILON, steps=1), eval_attack=None
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=kr.losses.ADRLoss(),
    )
    return model


def _fit(model, x, y, **kwargs):
    return model.fit(
        x,
        y,
        batch_size=64,
        shuffle=False,
        verbose=0,
        callbacks=[kr.callbacks.EMATeacher(0.9)],
        **kwargs,
    ).history


def test_schedule_value_at_a_step_does_not_depend_on_earlier_fits(digits, tmp_path):
    x, y, _, _ = digits
    steps = math.ceil(len(x) / 64)
    # One fit over three epochs: its first fit() fixes the horizon.
    single = _adr_model()
    reference = _fit(single, x, y, epochs=3)["temperature"]
    assert float(single.schedule_horizon) == 3 * steps
    # Hyperband's way: fit(epochs=1), then fit(epochs=3, initial_epoch=1), with
    # the horizon of the full budget.
    split = _adr_model()
    split.schedule_horizon.assign(3 * steps)
    first = _fit(split, x, y, epochs=1)["temperature"]
    weights = str(tmp_path / "after_one_epoch.weights.h5")
    split.save_weights(weights)
    rest = _fit(split, x, y, epochs=3, initial_epoch=1)["temperature"]
    np.testing.assert_allclose(first + rest, reference, rtol=1e-6)
    # A later fit() with another length keeps the horizon.
    _fit(single, x[:64], y[:64], epochs=5)
    assert float(single.schedule_horizon) == 3 * steps

    # KerasTuner's warm start: a fresh model loads the weights, teacher and
    # step counter, but not the optimizer's iteration counter, and goes on.
    warm = _adr_model()
    warm.load_weights(weights)
    warm.optimizer.iterations.assign(0)
    assert int(warm.training_step) == steps
    assert warm.teacher is not None
    warm_rest = _fit(warm, x, y, epochs=3, initial_epoch=1)["temperature"]
    np.testing.assert_allclose(warm_rest, reference[1:], rtol=1e-6)


@pytest.mark.slow  # tests/tuning/test_hyper_adr.py covers the default run
def test_keras_tuner_reloads_the_best_model_with_its_teacher(digits, tmp_path):
    kt = pytest.importorskip("keras_tuner")
    x, y, x_test, y_test = digits

    class HyperADR(kt.HyperModel):
        def build(self, hp):
            model = kr.AdversarialModel(
                _base(), attack=kr.attacks.PGD(epsilon=EPSILON, steps=1)
            )
            model.compile(
                optimizer=keras.optimizers.SGD(hp.Float("lr", 0.01, 0.1)),
                loss=kr.losses.ADRLoss(),
                metrics=["accuracy"],
            )
            return model

        def fit(self, hp, model, *args, **kwargs):
            callbacks = [*kwargs.pop("callbacks", []), kr.callbacks.EMATeacher(0.9)]
            return model.fit(*args, callbacks=callbacks, **kwargs)

    tuner = kt.RandomSearch(
        HyperADR(),
        objective=kt.Objective("val_robust_accuracy", "max"),
        max_trials=1,
        directory=str(tmp_path),
        project_name="adr",
    )
    tuner.search(
        x, y, epochs=2, batch_size=64, validation_data=(x_test, y_test), verbose=0
    )
    best = tuner.get_best_models(1)[0]
    assert isinstance(best.teacher_role, kr.training.EMA)
    assert float(best.teacher_decay) == pytest.approx(0.9)
    assert int(best.training_step) > 0
    # The teacher is the restored average, not a copy of the student.
    assert not np.allclose(
        best.teacher.get_weights()[0], best.base_model.get_weights()[0]
    )
    # `model.teacher` is compiled: evaluate() reports its own accuracy.
    expected = np.mean(best.teacher.predict(x_test, verbose=0).argmax(-1) == y_test)
    assert best.teacher.evaluate(x_test, y_test, verbose=0)[1] == pytest.approx(
        expected
    )

"""EMATeacher: the EMA by hand, creation, eval mode, errors, ADR end to end."""

import math

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust import schedules
from keras_robust.training import targets as training_targets


@pytest.fixture(scope="module")
def digits():
    return kr.data.load_digits()


@pytest.fixture(scope="module")
def small(digits):
    (x, y), _ = digits
    return x[:128], y[:128]


def _base(dropout=False):
    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten()]
    layers.append(keras.layers.Dense(16, activation="relu"))
    layers.append(keras.layers.BatchNormalization())
    if dropout:
        layers.append(keras.layers.Dropout(0.5))
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)


def _model(attack="pgd", dropout=False, loss=None, learning_rate=0.1):
    keras.utils.set_random_seed(0)
    model = kr.AdversarialModel(
        _base(dropout=dropout),
        attack=kr.attacks.PGD(0.05, steps=2) if attack == "pgd" else attack,
        eval_attack=None,
        seed=0,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=loss or kr.losses.SoftTargetCrossentropy(),
        steps_per_execution=1,
    )
    return model


class _Recorder(keras.callbacks.Callback):
    """Student (and teacher) weights at fit start and after every step."""

    def on_train_begin(self, logs=None):
        self.student_start = self.model.base_model.get_weights()
        self.teacher_start = self.model.teacher.get_weights()
        self.students = []

    def on_train_batch_end(self, batch, logs=None):
        self.students.append(self.model.base_model.get_weights())


def _fit(model, x, y, decay, epochs=2, recorder=None):
    recorder = recorder or _Recorder()
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=32,
        shuffle=False,
        callbacks=[kr.callbacks.EMATeacher(decay), recorder],
        verbose=0,
    )
    return recorder


def _hand_ema(start, students, decay):
    teacher = [np.asarray(w, np.float64) for w in start]
    for student in students:
        teacher = [
            decay * t + (1.0 - decay) * np.asarray(s, np.float64)
            for t, s in zip(teacher, student, strict=True)
        ]
    return teacher


def _assert_weights_close(got, expected, atol):
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=0, atol=atol)


def _moving_statistics(model):
    batch_norm = next(
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    return [np.asarray(batch_norm.moving_mean), np.asarray(batch_norm.moving_variance)]


@pytest.mark.parametrize("attack", ["pgd", None])
def test_teacher_is_the_ema_of_every_student_weight(small, attack):
    x, y = small
    decay = 0.8
    model = _model(attack=attack)
    initial_statistics = _moving_statistics(model.base_model)
    recorder = _fit(model, x, y, decay)
    assert len(recorder.students) == 8  # 2 epochs of 4 steps

    expected = _hand_ema(recorder.student_start, recorder.students, decay)
    # All weights, BatchNorm moving mean and variance included.
    assert len(expected) == len(model.base_model.weights) == 8
    _assert_weights_close(model.teacher.get_weights(), expected, atol=1e-6)

    teacher_statistics = _moving_statistics(model.teacher)
    for teacher, initial, student in zip(
        teacher_statistics,
        initial_statistics,
        _moving_statistics(model.base_model),
        strict=True,
    ):
        assert not np.allclose(teacher, initial, atol=1e-4)
        assert not np.allclose(teacher, student, atol=1e-4)
    # Not merely the last student, nor the first.
    assert not np.allclose(model.teacher.get_weights()[0], recorder.students[-1][0])
    assert not np.allclose(model.teacher.get_weights()[0], recorder.student_start[0])


def test_decay_one_keeps_the_initial_student(small):
    x, y = small
    model = _model(attack=None)
    recorder = _fit(model, x, y, decay=1.0, epochs=1)
    _assert_weights_close(model.teacher.get_weights(), recorder.student_start, 0.0)
    assert not np.allclose(model.base_model.get_weights()[0], recorder.student_start[0])


def test_decay_zero_follows_the_student(small):
    x, y = small
    model = _model(attack=None)
    recorder = _fit(model, x, y, decay=0.0, epochs=1)
    _assert_weights_close(
        model.teacher.get_weights(), model.base_model.get_weights(), 0.0
    )
    assert not np.allclose(model.teacher.get_weights()[0], recorder.student_start[0])


def test_teacher_created_at_fit_start_as_copy_and_kept_by_a_second_fit(small):
    x, y = small
    model = _model()
    before_fit = model.base_model.get_weights()
    assert model.teacher is None
    first = _fit(model, x, y, decay=0.9, epochs=1)
    _assert_weights_close(first.teacher_start, before_fit, 0.0)
    _assert_weights_close(first.student_start, before_fit, 0.0)
    teacher = model.teacher

    assert teacher.trainable is False
    assert teacher.trainable_weights == []
    trainable = {id(v) for v in model.trainable_variables}
    assert not trainable & {id(v) for v in teacher.weights}
    assert len(model.trainable_variables) == len(model.base_model.trainable_weights)
    assert id(model.teacher_decay) not in trainable
    after_first = teacher.get_weights()

    second = _fit(model, x, y, decay=0.5, epochs=1)
    assert model.teacher is teacher
    # The second fit starts from the existing teacher, not a fresh copy.
    _assert_weights_close(second.teacher_start, after_first, 0.0)
    assert not np.allclose(second.teacher_start[0], second.student_start[0])
    assert float(model.teacher_decay) == pytest.approx(0.5)
    expected = _hand_ema(after_first, second.students, 0.5)
    _assert_weights_close(model.teacher.get_weights(), expected, atol=1e-6)


def test_teacher_copies_a_student_trained_before_it_was_attached(small):
    x, y = small
    model = _model(attack=None)
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    trained = model.base_model.get_weights()
    recorder = _fit(model, x, y, decay=1.0, epochs=1)
    _assert_weights_close(recorder.teacher_start, trained, 0.0)
    _assert_weights_close(model.teacher.get_weights(), trained, 0.0)


@pytest.mark.tensorflow_only(
    reason="records with a variable the model does not track, which JAX's "
    "functional step refuses"
)
def test_teacher_runs_in_eval_mode_on_the_clean_batch(small, monkeypatch):
    # Record the teacher logits the train step hands to adr_targets.
    x, y = small
    recorded = keras.Variable(np.zeros((len(x), 10), "float32"), trainable=False)
    original = training_targets.adr_targets

    def recording_adr_targets(labels, teacher_logits, temperature, interpolation):
        recorded.assign(teacher_logits)
        return original(labels, teacher_logits, temperature, interpolation)

    monkeypatch.setattr(training_targets, "adr_targets", recording_adr_targets)
    model = _model(
        attack=kr.attacks.PGD(0.1, steps=2),
        dropout=True,
        loss=kr.losses.ADRLoss(temperature=1.0, interpolation=0.9),
    )
    initial = model.base_model(x, training=False)
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=len(x),
        shuffle=False,
        callbacks=[kr.callbacks.EMATeacher(1.0)],
        verbose=0,
    )
    # Dropout(0.5) or BatchNorm batch statistics in the teacher would change
    # these; an attacked batch would too.
    np.testing.assert_allclose(np.asarray(recorded), np.asarray(initial), atol=1e-5)
    np.testing.assert_allclose(
        model.teacher.predict(x, verbose=0), np.asarray(initial), atol=1e-5
    )


def test_requires_an_adversarial_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="AdversarialModel") as info:
        kr.callbacks.EMATeacher().set_model(model)
    assert "Received: model of type Sequential" in str(info.value)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="of type Sequential"):
        model.fit(
            np.zeros((4, 3)),
            np.zeros((4, 2)),
            callbacks=[kr.callbacks.EMATeacher()],
            verbose=0,
        )


@pytest.mark.parametrize("decay", [-0.1, 1.5, math.nan, math.inf, "0.9x", None])
def test_invalid_decay(decay):
    with pytest.raises(ValueError, match="Received: decay="):
        kr.callbacks.EMATeacher(decay)


def test_default_decay_and_config():
    callback = kr.callbacks.EMATeacher()
    assert callback.decay == 0.995
    assert callback.get_config() == {"decay": 0.995}
    assert kr.callbacks.EMATeacher(0.9).get_config() == {"decay": 0.9}


def test_serialization_round_trip():
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(kr.callbacks.EMATeacher(0.9))
    )
    assert isinstance(restored, kr.callbacks.EMATeacher)
    assert restored.decay == 0.9


@pytest.mark.parametrize("attack", ["pgd", None])
def test_adr_end_to_end_on_digits(digits, attack):
    (x, y), (x_test, y_test) = digits
    epochs, batch_size = 3, 128
    steps = math.ceil(len(x) / batch_size)
    keras.utils.set_random_seed(0)
    model = kr.AdversarialModel(
        _base(),
        attack=kr.attacks.PGD(0.1, steps=3) if attack == "pgd" else None,
        seed=0,
    )
    loss = kr.losses.ADRLoss()
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=loss,
        metrics=["accuracy"],
    )
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(x_test[:128], y_test[:128]),
        callbacks=[kr.callbacks.EMATeacher(0.99)],
        verbose=0,
    ).history

    total_steps = epochs * steps
    assert float(model.schedule_horizon) == total_steps
    last = total_steps - 1
    cosine_temperature = schedules.CosineAnnealing(2.5, 2.0, total_steps=total_steps)
    cosine_interpolation = schedules.CosineAnnealing(0.7, 0.95, total_steps=total_steps)
    assert len(history["temperature"]) == epochs
    assert history["temperature"][-1] == pytest.approx(
        float(cosine_temperature(last)), rel=1e-6
    )
    assert history["interpolation"][-1] == pytest.approx(
        float(cosine_interpolation(last)), rel=1e-6
    )
    # The value of the last step of each epoch, annealing from τ_max to τ_min.
    for epoch, value in enumerate(history["temperature"]):
        step = (epoch + 1) * steps - 1
        assert value == pytest.approx(float(cosine_temperature(step)), rel=1e-6)
    assert 2.0 < history["temperature"][-1] < history["temperature"][0] < 2.5
    assert 0.7 < history["interpolation"][0] < history["interpolation"][-1] < 0.95

    assert history["loss"][-1] < history["loss"][0]
    if attack is None:
        assert "robust_accuracy" not in history
        assert "val_robust_accuracy" not in history
    else:
        assert "robust_accuracy" in history
        assert "val_robust_accuracy" in history
    # Validation runs the teacher: after 33 steps at decay 0.99 it is still
    # mostly the initial weights, so above chance (0.1) but not far (clean
    # ADR: 0.19-0.54 over seeds 0-2 and both backends).
    assert history["val_accuracy"][-1] > 0.15


def test_adr_with_trades_objective_trains_on_rectified_labels(small, monkeypatch):
    x, y = small
    seen = {}
    original = training_targets.adr_targets

    def recording(labels, teacher_logits, temperature, interpolation):
        targets = original(labels, teacher_logits, temperature, interpolation)
        seen["targets"] = targets
        return targets

    monkeypatch.setattr(training_targets, "adr_targets", recording)
    keras.utils.set_random_seed(0)
    model = kr.AdversarialModel(
        _base(),
        attack=kr.attacks.PGD(0.05, steps=2),
        objective="trades",
        eval_attack=None,
    )
    model.compile(optimizer="sgd", loss=kr.losses.ADRLoss(), metrics=["accuracy"])
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=64,
        verbose=0,
        callbacks=[kr.callbacks.EMATeacher(0.9)],
    ).history
    assert "targets" in seen  # the TRADES step built ADR's targets
    assert np.all(np.isfinite(history["loss"]))
    assert {"temperature", "interpolation", "robust_accuracy"} <= set(history)


def test_teacher_evaluates_and_exports_in_place_of_the_student(small, tmp_path):
    import tensorflow as tf

    x, y = small
    model = _model()
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=64,
        verbose=0,
        callbacks=[kr.callbacks.EMATeacher(0.9)],
    )
    evaluator = kr.AdversarialModel(
        model.teacher, eval_attack=kr.attacks.PGD(0.05, steps=2)
    )
    evaluator.compile(loss=kr.losses.SoftTargetCrossentropy(), metrics=["accuracy"])
    results = evaluator.evaluate(x, y, verbose=0, return_dict=True)
    expected_accuracy = np.mean(model.teacher.predict(x, verbose=0).argmax(-1) == y)
    assert results["accuracy"] == pytest.approx(expected_accuracy)
    assert 0.0 <= results["robust_accuracy"] <= results["accuracy"] + 0.05

    path = str(tmp_path / "teacher")
    model.teacher.export(path)
    served = tf.saved_model.load(path)
    np.testing.assert_allclose(
        served.serve(tf.constant(x[:8])).numpy(),
        model.teacher.predict(x[:8], verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )

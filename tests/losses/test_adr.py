"""ADR: rectified labels against a NumPy reference, ADRLoss usage and saving."""

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust import losses, schedules

from ..backend_tools import compiled, value_and_gradient

RNG = np.random.default_rng(0)
# λ = ρ − (max P − P_y) is a float32 difference of numbers near 1, so a small
# λ carries an absolute error of a few float32 ulps of 1; entries λ·P_k with
# a small λ are compared to that absolute tolerance.
ATOL = 5e-7
NUM_EXAMPLES, NUM_CLASSES = 64, 10
LOGITS = (RNG.normal(size=(NUM_EXAMPLES, NUM_CLASSES)) * 3).astype("float32")
LABELS = RNG.integers(0, NUM_CLASSES, size=NUM_EXAMPLES)


def reference_targets(labels, teacher_logits, temperature, interpolation):
    """METHODS.md, ADR steps 2-4, in float64."""
    z = np.asarray(teacher_logits, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    one_hot = np.eye(probs.shape[-1])[np.asarray(labels)]
    rows = np.arange(len(probs))
    lam = np.clip(interpolation - (probs.max(axis=-1) - probs[rows, labels]), 0, 1)
    return lam[:, None] * probs + (1.0 - lam[:, None]) * one_hot


def _adversarial_logits(rng, labels, num_classes, margin):
    """Teacher logits favouring a wrong class over the label by `margin`."""
    logits = rng.normal(size=(len(labels), num_classes))
    rows = np.arange(len(labels))
    wrong = (labels + rng.integers(1, num_classes, size=len(labels))) % num_classes
    logits[rows, wrong] = logits.max(axis=-1) + np.abs(margin)
    logits[rows, labels] = logits[rows, wrong] - margin
    return logits.astype("float32")


def test_hand_written_example():
    # Row 0: confidently wrong teacher, gap ≈ 1 > ρ, so λ = 0 and ỹ = onehot.
    # Row 1: teacher right, gap = 0, so λ = ρ.
    # Row 2: P = [0.1, 0.45, 0.35, 0.1], label 2, gap 0.1, so λ = ρ − 0.1.
    rho = 0.8
    labels = np.array([0, 1, 2])
    probs_row_2 = np.array([0.1, 0.45, 0.35, 0.1])
    teacher_logits = np.array(
        [[0.0, 10.0, 0.0, 0.0], [0.0, 5.0, 1.0, 0.0], np.log(probs_row_2)],
        dtype="float32",
    )
    targets = np.asarray(losses.adr_targets(labels, teacher_logits, 1.0, rho))
    np.testing.assert_array_equal(targets[0], [1.0, 0.0, 0.0, 0.0])
    p1 = np.exp([0.0, 5.0, 1.0, 0.0]) / np.exp([0.0, 5.0, 1.0, 0.0]).sum()
    np.testing.assert_allclose(
        targets[1], rho * p1 + (1 - rho) * np.eye(4)[1], rtol=1e-6
    )
    lam = rho - 0.1
    np.testing.assert_allclose(
        targets[2], lam * probs_row_2 + (1 - lam) * np.eye(4)[2], rtol=1e-6
    )
    np.testing.assert_allclose(targets[2], [0.07, 0.315, 0.545, 0.07], rtol=1e-6)
    np.testing.assert_allclose(
        targets, reference_targets(labels, teacher_logits, 1.0, rho), rtol=1e-6
    )


def test_interpolation_zero_gives_one_hot_labels():
    targets = losses.adr_targets(LABELS, LOGITS, 2.0, 0.0)
    np.testing.assert_array_equal(np.asarray(targets), np.eye(NUM_CLASSES)[LABELS])


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 2.5])
@pytest.mark.parametrize("interpolation", [0.0, 0.5, 0.7, 0.95, 1.0])
def test_matches_reference_on_random_logits(temperature, interpolation):
    targets = np.asarray(losses.adr_targets(LABELS, LOGITS, temperature, interpolation))
    expected = reference_targets(LABELS, LOGITS, temperature, interpolation)
    np.testing.assert_allclose(targets, expected, rtol=1e-6, atol=ATOL)
    assert targets.dtype == np.float32
    assert np.all(targets >= 0.0)
    np.testing.assert_allclose(targets.sum(axis=-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5, 10.0])
@pytest.mark.parametrize("interpolation", [0.5, 0.7, 0.95, 0.999])
@pytest.mark.parametrize("margin", [0.0, 0.01, 0.3, 1.0, 3.0, 20.0])
def test_true_class_is_the_arg_max(temperature, interpolation, margin):
    rng = np.random.default_rng(1)
    adversarial = _adversarial_logits(rng, LABELS, NUM_CLASSES, margin)
    for teacher_logits in (LOGITS, adversarial):
        targets = np.asarray(
            losses.adr_targets(LABELS, teacher_logits, temperature, interpolation)
        )
        rows = np.arange(NUM_EXAMPLES)
        others = targets.copy()
        others[rows, LABELS] = -np.inf
        # Strictly on top, by at least 1 − ρ up to float32 rounding.
        assert np.all(
            targets[rows, LABELS] - others.max(axis=-1) >= (1 - interpolation) - 1e-6
        )
        np.testing.assert_allclose(
            targets,
            reference_targets(LABELS, teacher_logits, temperature, interpolation),
            rtol=1e-6,
            atol=ATOL,
        )


def test_wrong_but_unsure_teacher_is_mixed_in_below_the_label():
    rng = np.random.default_rng(2)
    teacher_logits = _adversarial_logits(rng, LABELS, NUM_CLASSES, margin=0.05)
    assert np.all(teacher_logits.argmax(axis=-1) != LABELS)
    targets = np.asarray(losses.adr_targets(LABELS, teacher_logits, 2.5, 0.7))
    # 0 < λ < ρ on every row: the teacher's mass is mixed in, the label on top.
    off_label = 1.0 - targets[np.arange(NUM_EXAMPLES), LABELS]
    assert np.all(off_label > 0.0)
    assert np.all(targets.argmax(axis=-1) == LABELS)


def test_sparse_column_and_one_hot_labels_give_identical_targets():
    sparse = losses.adr_targets(LABELS, LOGITS, 2.0, 0.8)
    column = losses.adr_targets(LABELS[:, None], LOGITS, 2.0, 0.8)
    one_hot = losses.adr_targets(
        np.eye(NUM_CLASSES, dtype="float32")[LABELS], LOGITS, 2.0, 0.8
    )
    np.testing.assert_array_equal(np.asarray(sparse), np.asarray(column))
    np.testing.assert_array_equal(np.asarray(sparse), np.asarray(one_hot))


def test_no_gradient_flows_into_the_teacher_logits():
    def objective(teacher_logits):
        targets = losses.adr_targets(LABELS, teacher_logits, 2.0, 0.8)
        return keras.ops.sum(targets * np.arange(NUM_CLASSES, dtype="float32"), axis=1)

    values, gradient = value_and_gradient(objective, LOGITS)
    assert np.all(np.isfinite(values))
    assert not np.any(gradient)


def test_tensor_temperature_and_interpolation_in_a_compiled_function():
    @compiled
    def targets_fn(labels, logits, temperature, interpolation):
        return losses.adr_targets(labels, logits, temperature, interpolation)

    for temperature, interpolation in [(2.5, 0.7), (1.0, 0.95), (1.7, 0.3)]:
        got = targets_fn(
            keras.ops.convert_to_tensor(LABELS),
            keras.ops.convert_to_tensor(LOGITS),
            keras.ops.convert_to_tensor(temperature, "float32"),
            keras.Variable(interpolation).value,
        )
        np.testing.assert_allclose(
            np.asarray(got),
            reference_targets(LABELS, LOGITS, temperature, interpolation),
            rtol=1e-6,
            atol=ATOL,
        )


# --- ADRLoss --------------------------------------------------------------------


def _base(batch_norm=True):
    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten()]
    layers.append(keras.layers.Dense(16, activation="relu"))
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = kr.data.load_digits()
    return x[:128], y[:128]


def test_adr_loss_called_directly_raises():
    with pytest.raises(ValueError, match="EMATeacher") as info:
        losses.ADRLoss()(LABELS, LOGITS)
    assert "AdversarialModel" in str(info.value)


def test_adr_loss_in_plain_keras_model_raises(digits):
    x, y = digits
    keras.utils.set_random_seed(0)
    model = _base()
    model.compile(optimizer="sgd", loss=losses.ADRLoss())
    with pytest.raises(ValueError, match="EMATeacher") as info:
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert "AdversarialModel" in str(info.value)


def test_adversarial_model_without_ema_teacher_raises(digits):
    x, y = digits
    keras.utils.set_random_seed(0)
    model = kr.AdversarialModel(_base(), attack=None)
    model.compile(optimizer="sgd", loss=losses.ADRLoss())
    with pytest.raises(ValueError, match="EMATeacher"):
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert model.teacher is None


def test_numbers_become_constant_schedules():
    loss = losses.ADRLoss(temperature=2, interpolation=0.8)
    assert isinstance(loss.temperature, schedules.Constant)
    assert isinstance(loss.interpolation, schedules.Constant)
    temperature, interpolation = loss.schedule_values(123, None)
    assert float(temperature) == 2.0
    assert float(interpolation) == pytest.approx(0.8)


def test_default_schedules_are_cifar10_reference():
    loss = losses.ADRLoss()
    assert isinstance(loss.temperature, schedules.CosineAnnealing)
    assert (loss.temperature.start, loss.temperature.end) == (2.5, 2.0)
    assert (loss.interpolation.start, loss.interpolation.end) == (0.7, 0.95)
    assert loss.temperature.total_steps is None


@pytest.mark.parametrize("argument", ["temperature", "interpolation"])
@pytest.mark.parametrize("value", ["cosine", True, [0.5]])
def test_invalid_schedule_arguments(argument, value):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        losses.ADRLoss(**{argument: value})


def test_serialization_round_trip_keeps_schedules():
    loss = losses.ADRLoss(
        temperature=schedules.CosineAnnealing(1.5, 1.0, total_steps=500),
        interpolation=schedules.LinearAnnealing(0.5, 0.9),
        name="adr",
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(restored, losses.ADRLoss)
    assert restored.get_config() == loss.get_config()
    assert isinstance(restored.temperature, schedules.CosineAnnealing)
    assert isinstance(restored.interpolation, schedules.LinearAnnealing)
    assert restored.temperature.total_steps == 500
    assert restored.name == "adr"


def test_keras_file_round_trip_restores_loss_teacher_and_decay(digits, tmp_path):
    x, y = digits
    keras.utils.set_random_seed(0)
    model = kr.AdversarialModel(
        _base(), attack=kr.attacks.PGD(0.05, steps=2), eval_attack=None, seed=0
    )
    loss = losses.ADRLoss(
        temperature=schedules.CosineAnnealing(1.5, 1.0),
        interpolation=schedules.LinearAnnealing(0.5, 0.9, total_steps=50),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=32,
        callbacks=[kr.callbacks.EMATeacher(0.9)],
        verbose=0,
    )
    path = tmp_path / "adr.keras"
    model.save(path)
    restored = keras.saving.load_model(path)

    assert isinstance(restored, kr.AdversarialModel)
    assert isinstance(restored.loss, losses.ADRLoss)
    assert restored.loss.get_config() == loss.get_config()
    assert float(restored.teacher_decay) == pytest.approx(0.9)
    assert restored.teacher is not None
    for got, expected in zip(
        restored.teacher.get_weights(), model.teacher.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(got, expected)
    # The teacher is not the student after training.
    assert not np.allclose(
        model.teacher.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    np.testing.assert_array_equal(
        restored.teacher.predict(x, verbose=0), model.teacher.predict(x, verbose=0)
    )
    np.testing.assert_array_equal(
        restored.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    # Training goes on from the restored state.
    history = restored.fit(
        x,
        y,
        epochs=1,
        batch_size=32,
        callbacks=[kr.callbacks.EMATeacher(0.9)],
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][-1])
    assert "temperature" in history.history

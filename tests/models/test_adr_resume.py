"""A run interrupted mid-epoch and resumed with BackupAndRestore ends where an
uninterrupted run ends: same student, teacher, schedule values and RNG state."""

import keras
import numpy as np
import pytest

import keras_robust as kr

EPOCHS = 3
BATCH = 64


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises in the middle of epoch `epoch` (after batch `batch`)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise Interrupt


def _model():
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(10),
        ]
    )
    model = kr.AdversarialModel(
        base,
        attack=kr.attacks.PGD(epsilon=0.1, steps=3),
        eval_attack=None,
        seed=3,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=kr.losses.ADRLoss(),
        metrics=["accuracy"],
    )
    return model


def _fit(model, x, y, callbacks):
    return model.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        verbose=0,
        callbacks=[kr.callbacks.EMATeacher(0.9), *callbacks],
    )


@pytest.fixture(scope="module")
def data():
    (x, y), _ = kr.data.load_digits()
    return x[:512], y[:512]


def test_resume_after_interruption_equals_uninterrupted_run(data, tmp_path):
    x, y = data
    reference = _model()
    reference_history = _fit(reference, x, y, [])

    backup = str(tmp_path / "backup")
    interrupted = _model()
    with pytest.raises(Interrupt):
        _fit(
            interrupted,
            x,
            y,
            [keras.callbacks.BackupAndRestore(backup), InterruptAt(epoch=1, batch=3)],
        )
    # A fresh process would build a fresh model: do the same here.
    resumed = _model()
    resumed_history = _fit(resumed, x, y, [keras.callbacks.BackupAndRestore(backup)])

    # The resumed fit() ran only the epochs after the last backup.
    assert len(resumed_history.history["loss"]) == EPOCHS - 1
    for key in ("loss", "temperature", "interpolation", "robust_accuracy"):
        np.testing.assert_allclose(
            resumed_history.history[key],
            reference_history.history[key][1:],
            rtol=1e-5,
            err_msg=key,
        )
    for a, b in zip(
        resumed.base_model.get_weights(),
        reference.base_model.get_weights(),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(
        resumed.teacher.get_weights(), reference.teacher.get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(resumed.seed_generator.state),
        keras.ops.convert_to_numpy(reference.seed_generator.state),
    )
    # The teacher really moved away from its initial copy of the student.
    initial = _model()
    assert not np.allclose(
        resumed.teacher.get_weights()[0], initial.base_model.get_weights()[0]
    )

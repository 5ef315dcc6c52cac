"""Bad or suspicious input gets an error naming the argument and the value
received, or a warning; never a silently wrong result."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.evaluation import evaluate_robustness, expected_calibration_error


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = kr.data.load_digits()
    return x[:128], y[:128]


def _base(num_classes=10):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes),
        ]
    )


def _model(**kwargs):
    model = kr.AdversarialModel(
        _base(), attack=kr.attacks.PGD(0.1, steps=1), eval_attack=None, **kwargs
    )
    model.compile(optimizer="sgd", loss=kr.losses.SoftTargetCrossentropy())
    return model


# --- losses ------------------------------------------------------------------------


def test_float_labels_that_are_not_whole_numbers_are_rejected():
    logits = np.zeros((2, 3), "float32")
    loss = kr.losses.SoftTargetCrossentropy()
    with pytest.raises(
        ValueError, match=r"`y_true`.*Received: y_true containing \[1\.7"
    ):
        loss(np.array([0.0, 1.7]), logits)
    # Whole-number floats are labels.
    assert np.isfinite(float(loss(np.array([0.0, 2.0]), logits)))


def test_large_int64_label_is_reported_as_given():
    model = _base()
    x = np.zeros((1, 8, 8, 1), "float32")
    label = np.array([2**32 + 3], "int64")
    with pytest.raises(ValueError, match=r"Received: y containing \[4294967299\]"):
        kr.attacks.PGD(0.1, steps=1)(model, x, label)
    # A Keras loss casts labels to float32 first; the value stays positive.
    with pytest.raises(ValueError, match=r"Received: y_true containing \[4294967296"):
        kr.losses.SoftTargetCrossentropy()(label, np.zeros((1, 10), "float32"))


@pytest.mark.parametrize(
    "loss",
    [
        kr.losses.SoftTargetCrossentropy(),
        kr.losses.ActivePassiveLoss("nce", "rce"),
    ],
)
def test_a_single_output_class_is_rejected(loss):
    with pytest.raises(ValueError, match=r"at least 2 classes.*y_pred.shape=\(4, 1\)"):
        loss(np.zeros(4, "int64"), np.zeros((4, 1), "float32"))


@pytest.mark.tensorflow_only(
    reason="only TensorFlow marks a traced softmax output (docs/backends.md)"
)
def test_probabilities_warning_is_issued_once_per_fit(digits):
    x, y = digits
    base = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    base.add(keras.layers.Softmax())
    base.compile(optimizer="sgd", loss=kr.losses.SoftTargetCrossentropy())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        base.fit(x, y, epochs=2, validation_data=(x, y), verbose=0)
    messages = [w for w in caught if "looks like probabilities" in str(w.message)]
    assert len(messages) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, r"`temperature` must stay in \(0.0, inf\].*=Constant"),
        (
            {"temperature": kr.schedules.LinearAnnealing(2.0, -1.0)},
            r"`temperature`.*Received: temperature=LinearAnnealing",
        ),
        ({"interpolation": 1.2}, r"`interpolation` must stay in \[0.0, 1.0\]"),
        (
            {"interpolation": kr.schedules.CosineAnnealing(-0.1, 0.9)},
            r"Received: interpolation=CosineAnnealing",
        ),
    ],
)
def test_adr_schedules_outside_their_domain_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kr.losses.ADRLoss(**kwargs)


def test_active_passive_takes_component_hyperparameters():
    loss = kr.losses.ActivePassiveLoss("ngce", "mae", q=0.5)
    assert loss.active.q == 0.5
    loss = kr.losses.ActivePassiveLoss("nfl", "rce", gamma=1.0, label_clip=1e-3)
    assert (loss.active.gamma, loss.passive.label_clip) == (1.0, 1e-3)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert restored.active.gamma == 1.0
    with pytest.raises(ValueError, match=r"`q`.*Received: q=0.5"):
        kr.losses.ActivePassiveLoss("nce", "rce", q=0.5)


# --- attacks -----------------------------------------------------------------------


def test_linf_epsilon_in_pixel_units_warns_with_the_likely_intent():
    with pytest.warns(
        UserWarning, match=r"epsilon=8 is more than half.*8/255 = 0.03137"
    ):
        kr.attacks.PGD(epsilon=8)
    with pytest.warns(UserWarning, match="more than half"):
        kr.attacks.Square(epsilon=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kr.attacks.PGD(epsilon=8 / 255)
        kr.attacks.PGD(epsilon=8, value_range=(0, 255))
        kr.attacks.PGD(epsilon=3.0, norm="l2")


@pytest.mark.parametrize(
    "attack",
    [
        kr.attacks.PGD(0.1, steps=2),
        kr.attacks.Square(0.1, queries=5),
        kr.attacks.APGD(0.1, steps=2),
    ],
)
def test_nan_inputs_are_rejected_by_name(attack):
    model = _base()
    x = np.full((4, 8, 8, 1), 0.5, "float32")
    x[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"`x` must hold finite values.*1 NaN"):
        attack(model, x, np.arange(4))


def test_apgd_t_with_too_many_target_classes_fails_before_running():
    attack = kr.attacks.APGD(0.1, loss="dlr", targeted=True, num_target_classes=9)
    model = _base(num_classes=5)
    with pytest.raises(ValueError, match=r"minus 1 \(4\).*num_target_classes=9"):
        attack(model, np.zeros((2, 8, 8, 1), "float32"), np.arange(2))
    with pytest.raises(ValueError, match=r"num_target_classes=9"):
        kr.AdversarialModel(model, eval_attack=attack)


# --- fit() and evaluate() -------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda x, y: (x * 255, y), r"`x` has values outside value_range.*max=255"),
        (lambda x, y: (np.where(x > 0.9, np.nan, x), y), r"`x` must hold finite.*NaN"),
        (lambda x, y: ((x * 255).astype("uint8"), y), r"dtype uint8"),
        (lambda x, y: (x, y + 10), r"`y` must hold class labels.*Received: y"),
        (lambda x, y: (x, y + 0.5), r"whole numbers"),
    ],
)
def test_fit_checks_the_data_eagerly(make, match, digits):
    x, y = make(*digits)
    model = _model()
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, epochs=1, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with pytest.raises(ValueError, match=match):
        model.fit(dataset, epochs=1, verbose=0)


def test_fit_checks_sample_weight_and_validation_data(digits):
    x, y = digits
    model = _model()
    with pytest.raises(ValueError, match=r"len\(sample_weight\)=5, len\(x\)=128"):
        model.fit(x, y, sample_weight=np.ones(5), epochs=1, verbose=0)
    evaluating = kr.AdversarialModel(_base(), attack=kr.attacks.PGD(0.1, steps=1))
    evaluating.compile(optimizer="sgd", loss=kr.losses.SoftTargetCrossentropy())
    with pytest.raises(ValueError, match=r"`validation_data` has values outside"):
        evaluating.fit(x, y, validation_data=(x * 2, y), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`x` has values outside"):
        evaluating.evaluate(x * 2, y, verbose=0)


@pytest.mark.tensorflow_only(
    reason="an in-graph check: a compiled JAX step cannot fail (docs/backends.md)"
)
def test_in_graph_check_says_nan(digits):
    x, y = digits
    x = np.where(x > 0.9, np.nan, x).astype("float32")
    model = _model()

    def generator():
        yield x[:32], y[:32]

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"finite values.*NaN"):
        model.fit(generator(), epochs=1, steps_per_epoch=1, verbose=0)


def test_mid_epoch_backups_warn(digits, tmp_path):
    x, y = digits
    model = _model()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=2)
    with pytest.warns(UserWarning, match=r"Received: save_freq=2"):
        model.fit(x, y, epochs=1, callbacks=[backup], verbose=0)


# --- evaluation --------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier():
    return _base()


def test_evaluate_robustness_accepts_standard_names(classifier, digits):
    x, y = digits
    report = evaluate_robustness(
        classifier, (x[:16], y[:16]), 0.05, attacks=["apgd-ce"], checks=False, verbose=0
    )
    assert list(report["per_attack"]) == ["apgd-ce"]
    with pytest.raises(ValueError, match=r"Received: attacks containing 'fab'"):
        evaluate_robustness(classifier, (x, y), 0.05, attacks=["fab"], verbose=0)


@pytest.mark.parametrize(
    "data, kwargs, match",
    [
        ((np.zeros((0, 8, 8, 1)), np.zeros(0)), {}, r"no examples"),
        (None, {"batch_size": 0}, r"Received: batch_size=0"),
        ((np.zeros((4, 8, 8, 1)), np.zeros(3)), {}, r"len\(x\)=4, len\(y\)=3"),
        ((np.zeros((4, 8, 8, 1)), np.array([0, 1, 2, 10])), {}, r"y containing \[10\]"),
        (None, {"value_range": (0, 2)}, r"differs from the value_range"),
    ],
)
def test_evaluate_robustness_bad_input(classifier, digits, data, kwargs, match):
    data = digits if data is None else data
    attacks = [kr.attacks.PGD(0.05, steps=1)]
    with pytest.raises(ValueError, match=match):
        evaluate_robustness(
            classifier, data, 0.05, attacks=attacks, verbose=0, **kwargs
        )


def test_evaluate_robustness_warns_about_pixel_unit_epsilon(classifier, digits):
    x, y = digits
    with pytest.warns(UserWarning, match=r"epsilon=8 is more than half"):
        evaluate_robustness(
            classifier,
            (x[:8], y[:8]),
            8,
            attacks=[kr.attacks.PGD(0.05, steps=1)],
            checks=False,
            verbose=0,
        )


def test_calibration_rejects_bad_labels_and_warns_on_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)) * 3
    labels = rng.integers(0, 4, size=50)
    with pytest.raises(ValueError, match=r"`labels`.*Received: labels containing \[7"):
        expected_calibration_error(logits, np.where(labels == 0, 7, labels))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    with pytest.warns(UserWarning, match="looks like probabilities"):
        expected_calibration_error(probabilities, labels)


# --- schedules and data --------------------------------------------------------------


def test_schedule_without_horizon_names_the_value():
    with pytest.raises(ValueError, match=r"Received: total_steps=None"):
        kr.schedules.CosineAnnealing(1.0, 0.0)(3)


@pytest.mark.parametrize("seed", ["x", 1.5, -1, True])
def test_label_noise_seed_is_checked(seed):
    with pytest.raises(ValueError, match=r"Received: seed="):
        kr.data.inject_label_noise(np.arange(10) % 3, 0.2, num_classes=3, seed=seed)

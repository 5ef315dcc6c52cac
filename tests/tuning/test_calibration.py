"""Automatic label calibration: `keras_robust.tuning.calibrate_labels`."""

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust.tuning import calibrate_labels


def _linear(weights, num_classes=None):
    """A Keras model whose logits are `x @ weights` (no bias)."""
    features, classes = weights.shape
    model = keras.Sequential(
        [keras.Input((features,)), keras.layers.Dense(classes, use_bias=False)]
    )
    model.set_weights([weights.astype("float32")])
    return model


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _sample(rng, probs):
    cumulative = probs.cumsum(-1)
    u = rng.uniform(size=(len(probs), 1))
    return np.minimum((u > cumulative).sum(-1), probs.shape[-1] - 1)


def test_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(6, 4)) * 3.0
    model = _linear(weights)
    x = rng.uniform(size=(20000, 6)).astype("float32")
    true_temperature = 2.5
    y = _sample(rng, _softmax(x @ weights / true_temperature))
    temperature, interpolation = calibrate_labels(
        model,
        model,
        (x, y),
        (x[:500], y[:500]),
        attack=None,
        min_agreement=0.0,
        verbose=0,
    )
    # The reference grid's neighbours differ by 4.5%.
    assert temperature == pytest.approx(true_temperature, rel=0.1)
    assert 0.01 <= interpolation <= 1.0


def test_recovers_a_known_interpolation_and_matches_the_formula():
    rng = np.random.default_rng(1)
    w_teacher = rng.normal(size=(5, 3)) * 3.0
    w_last = rng.normal(size=(5, 3)) * 3.0
    x = rng.uniform(size=(20000, 5)).astype("float32")
    rho = 0.3
    mixture = rho * _softmax(x @ w_teacher) + (1 - rho) * _softmax(x @ w_last)
    y = _sample(rng, mixture)
    result, grid = calibrate_labels(
        _linear(w_teacher),
        _linear(w_last),
        (x, y),
        (x[:300], y[:300]),
        attack=None,
        min_agreement=0.0,
        temperatures=[0.5, 1.0, 2.0],
        verbose=0,
        return_grid=True,
    )
    assert result.temperature == 1.0
    assert result.interpolation == pytest.approx(rho, abs=0.05)
    # The grid is the documented NLL, at every point checked.
    for i, temperature in enumerate(grid["temperatures"]):
        for j in (0, 29, 99):
            r = grid["interpolations"][j]
            p = r * _softmax(x @ w_teacher / temperature) + (1 - r) * _softmax(
                x @ w_last / temperature
            )
            nll = -np.mean(np.log(p[np.arange(len(y)), y] + 1e-8))
            assert grid["nll"][i, j] == pytest.approx(nll, rel=1e-4)


def test_agreement_constraint_picks_the_best_allowed_pair():
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(5, 3)) * 3.0
    model = _linear(weights)
    unrelated = _linear(rng.normal(size=(5, 3)))
    x = rng.uniform(size=(4000, 5)).astype("float32")
    y = _sample(rng, _softmax(x @ weights / 3.0))
    # The labels follow the teacher at T = 3, so the NLL prefers ρ near 1;
    # but its arg-max disagrees with a sampled label often, so teacher-heavy
    # labels fail a 0.95 agreement.
    result, grid = calibrate_labels(
        model,
        unrelated,
        (x, y),
        (x, y),
        attack=None,
        min_agreement=0.95,
        verbose=0,
        return_grid=True,
    )
    probs = _softmax(x @ weights / result.temperature)
    labels = result.interpolation * probs + (1 - result.interpolation) * np.eye(3)[y]
    assert np.mean(labels.argmax(-1) == y) >= 0.95
    allowed = grid["agreement"] >= 0.95
    assert not allowed[:, -1].any()
    best = grid["nll"][allowed].min()
    i = list(grid["temperatures"]).index(result.temperature)
    j = list(grid["interpolations"]).index(result.interpolation)
    assert grid["nll"][i, j] == best
    assert grid["nll"].min() < best

    with pytest.raises(ValueError, match=r"best\s+agreement found is 0\.[0-9]+"):
        calibrate_labels(
            model,
            model,
            (x, y),
            (x, y),
            attack=None,
            min_agreement=0.95,
            interpolations=[1.0],
            verbose=0,
        )


def test_adversarial_calibration_attacks_the_teacher(capsys):
    (x, y), (x_test, y_test) = kr.data.load_digits()
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    teacher.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    teacher.fit(x, y, epochs=5, verbose=0)
    attack = kr.attacks.PGD(epsilon=0.1, steps=5)
    _, clean = calibrate_labels(
        teacher,
        teacher,
        (x_test, y_test),
        (x[:200], y[:200]),
        attack=None,
        min_agreement=0.0,
        verbose=0,
        return_grid=True,
    )
    result, adversarial = calibrate_labels(
        teacher,
        teacher,
        (x_test, y_test),
        (x[:200], y[:200]),
        attack=attack,
        min_agreement=0.5,
        return_grid=True,
    )
    out = capsys.readouterr().out
    assert "Calibrated labels: temperature=" in out
    assert "example" in out  # the attack's progress bar
    # At T = 1, ρ = 1 the NLL is the teacher's own cross-entropy, which its
    # attack raises.
    i = int(np.argmin(np.abs(clean["temperatures"] - 1.0)))
    assert adversarial["nll"][i, -1] > clean["nll"][i, -1] + 0.1
    # Adversarial labels are softer: a higher fitted temperature.
    clean_result = calibrate_labels(
        teacher,
        teacher,
        (x_test, y_test),
        (x[:200], y[:200]),
        attack=None,
        min_agreement=0.5,
        verbose=0,
    )
    assert result.temperature > clean_result.temperature


def test_bad_input_names_the_argument():
    model = _linear(np.ones((4, 3)))
    other = _linear(np.ones((4, 5)))
    x = np.zeros((8, 4), "float32")
    y = np.zeros(8, "int64")
    kwargs = {"attack": None, "verbose": 0}
    with pytest.raises(ValueError, match="`validation_data` holds no examples"):
        calibrate_labels(model, model, (x[:0], y[:0]), (x, y), **kwargs)
    with pytest.raises(ValueError, match="`teacher` and `last_model`.*3.*5"):
        calibrate_labels(model, other, (x, y), (x, y), **kwargs)
    with pytest.raises(ValueError, match="`min_agreement`.*min_agreement=1.5"):
        calibrate_labels(model, model, (x, y), (x, y), min_agreement=1.5, **kwargs)
    with pytest.raises(ValueError, match="`attack`.*attack='pgd'"):
        calibrate_labels(model, model, (x, y), (x, y), attack="pgd")
    with pytest.raises(
        ValueError, match="`training_data`.*x of shape \\(8, 4\\) and y"
    ):
        calibrate_labels(model, model, (x, y), (x, y[:5]), **kwargs)
    with pytest.raises(ValueError, match="`temperatures`.*-1.0"):
        calibrate_labels(model, model, (x, y), (x, y), temperatures=[-1.0], **kwargs)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\).*to 7"):
        calibrate_labels(model, model, (x, y + 7), (x, y), **kwargs)
    with pytest.raises(ValueError, match="`teacher`.*teacher=None"):
        calibrate_labels(None, model, (x, y), (x, y), **kwargs)

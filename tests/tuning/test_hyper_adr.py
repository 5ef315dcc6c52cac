"""HyperADR: the search space, KerasTuner searches on digits, reloading."""

import math

import keras
import numpy as np
import pytest

import keras_robust as kr

kt = pytest.importorskip("keras_tuner")
from keras_robust.tuning import HyperADR, robust_objective  # noqa: E402

BATCH = 64


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_test, y_test) = kr.data.load_digits()
    return x[:256], y[:256], x_test[:64], y_test[:64]


def _base():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def _hypermodel(**kwargs):
    return HyperADR(
        _base,
        attack=kr.attacks.PGD(0.1, steps=1),
        eval_attack=kr.attacks.PGD(0.1, steps=1),
        optimizer=lambda: keras.optimizers.Adam(3e-3),
        **kwargs,
    )


def test_space_names_and_reference_defaults():
    hp = kt.HyperParameters()
    values = _hypermodel().declare(hp)
    assert values == {
        "temperature_start": 2.5,
        "temperature_end": 2.0,
        "interpolation_start": 0.7,
        "interpolation_end": 0.95,
        "ema_decay": 0.995,
        "schedule": "cosine",
    }
    assert {p.name for p in hp.space} == set(values)
    model = _hypermodel().build(kt.HyperParameters())
    assert isinstance(model.teacher_role, kr.training.EMA)
    assert float(model.teacher_decay) == pytest.approx(0.995)
    assert isinstance(model.loss, kr.losses.ADRLoss)
    assert (model.loss.temperature.start, model.loss.temperature.end) == (2.5, 2.0)


@pytest.mark.parametrize(
    "name, value", [("temperature_start", -1.0), ("interpolation_end", 1.5)]
)
def test_values_outside_the_domain_name_the_hyperparameter(name, value):
    hp = kt.HyperParameters()
    hp.Fixed(name, value)
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}={value}"):
        _hypermodel().build(hp)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: build_base_model=3"):
        HyperADR(3, attack=None)
    with pytest.raises(ValueError, match="Received: attack='pgd'"):
        HyperADR(_base, attack="pgd")
    with pytest.raises(ValueError, match="Received: optimizer='adam'"):
        HyperADR(_base, attack=None, optimizer="adam")
    with pytest.raises(ValueError, match="Received: epochs=0"):
        HyperADR(_base, attack=None, epochs=0)


def test_random_search_with_a_fixed_schedule_reloads_the_best_with_teacher(
    digits, tmp_path
):
    x, y, x_test, y_test = digits
    hp = kt.HyperParameters()
    hp.Fixed("schedule", "linear")
    tuner = kt.RandomSearch(
        _hypermodel(),
        objective=robust_objective(),
        max_trials=2,
        hyperparameters=hp,
        directory=str(tmp_path),
        project_name="random",
        seed=0,
    )
    tuner.search(
        x, y, epochs=2, batch_size=BATCH, validation_data=(x_test, y_test), verbose=0
    )
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2
    for trial in trials:
        assert trial.hyperparameters.get("schedule") == "linear"
        assert 0.0 <= trial.metrics.get_best_value("val_robust_accuracy") <= 1.0
    best = tuner.get_best_models(1)[0]
    assert isinstance(best.loss.temperature, kr.schedules.LinearAnnealing)
    assert isinstance(best.teacher_role, kr.training.EMA)
    # The reloaded teacher is the trained average, not the initial copy.
    fresh = _hypermodel().build(trials[0].hyperparameters)
    assert not np.allclose(
        best.teacher.get_weights()[0], fresh.teacher.get_weights()[0]
    )
    steps = math.ceil(len(x) / BATCH)
    assert float(best.schedule_horizon) == 2 * steps
    results = best.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert results["robust_accuracy"] <= results["accuracy"] + 1e-6


@pytest.mark.slow
def test_hyperband_trials_share_the_horizon_of_max_epochs(digits, tmp_path):
    x, y, x_test, y_test = digits
    tuner = kt.Hyperband(
        _hypermodel(epochs=3),
        objective=robust_objective(),
        max_epochs=3,
        factor=3,
        hyperband_iterations=1,
        directory=str(tmp_path),
        project_name="hyperband",
        seed=0,
    )
    tuner.search(x, y, batch_size=BATCH, validation_data=(x_test, y_test), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) >= 2
    for trial in trials:
        assert trial.metrics.exists("val_robust_accuracy")
    best = tuner.get_best_models(1)[0]
    assert float(best.schedule_horizon) == 3 * math.ceil(len(x) / BATCH)
    assert isinstance(best.teacher_role, kr.training.EMA)


def test_robust_objective_maximises_val_robust_accuracy():
    objective = robust_objective()
    assert (objective.name, objective.direction) == ("val_robust_accuracy", "max")


@pytest.mark.slow
def test_bayesian_search_and_an_interrupted_search_resumes(digits, tmp_path):
    x, y, x_test, y_test = digits

    def tuner(max_trials):
        return kt.BayesianOptimization(
            _hypermodel(),
            objective=robust_objective(),
            max_trials=max_trials,
            directory=str(tmp_path),
            project_name="bayesian",
            overwrite=False,
            seed=0,
        )

    def search(t):
        t.search(
            x,
            y,
            epochs=1,
            batch_size=BATCH,
            validation_data=(x_test, y_test),
            verbose=0,
        )

    first = tuner(1)
    search(first)
    assert len(first.oracle.trials) == 1
    # A new process with the same directory goes on from the finished trial.
    resumed = tuner(2)
    assert len(resumed.oracle.trials) == 1
    search(resumed)
    assert len(resumed.oracle.trials) == 2
    for trial in resumed.oracle.trials.values():
        assert trial.metrics.exists("val_robust_accuracy")
    assert isinstance(resumed.get_best_models(1)[0].teacher_role, kr.training.EMA)

import json

import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks import FGSM, PGD
from keras_robust.evaluation import evaluate_robustness

EPSILON = 0.1


def _accuracy(model, x, y):
    return float(np.mean(model.predict(x, verbose=0).argmax(-1) == y))


def test_sequential_report_is_the_worst_case(digits_model):
    model, x, y = digits_model
    # Without a random start each example's attack is the same alone and in
    # the ensemble (random draws would depend on the batch's composition).
    attacks = [
        ("fgsm", FGSM(EPSILON)),
        ("pgd", PGD(EPSILON, steps=10, random_start=False)),
    ]
    report = evaluate_robustness(
        model, (x, y), EPSILON, attacks=attacks, verbose=0, checks=False
    )
    assert report["num_examples"] == len(x)
    assert report["clean_accuracy"] == pytest.approx(_accuracy(model, x, y))
    assert list(report["per_attack"]) == ["fgsm", "pgd"]
    # Cumulative: robust accuracy only falls as attacks are added.
    assert report["per_attack"]["pgd"] <= report["per_attack"]["fgsm"]
    assert report["robust_accuracy"] == report["per_attack"]["pgd"]
    assert report["robust_accuracy"] < report["clean_accuracy"]
    assert report.robust_mask.mean() == pytest.approx(report["robust_accuracy"])
    # The ECE of the clean logits, in the table too.
    ece = kr.evaluation.expected_calibration_error(model.predict(x, verbose=0), y)
    assert report["ece"] == pytest.approx(ece)
    assert f"| ECE (clean) | {ece:.4f} |" in report.table()
    # The worst case is never above any single attack run alone.
    for _, attack in attacks:
        alone = _accuracy(model, attack(model, x, y, seed=0), y)
        assert report["robust_accuracy"] <= alone + 1e-9


def test_independent_mode_reports_each_attack_alone(digits_model):
    model, x, y = digits_model
    # Without a random start each example's attack is the same alone and in
    # the ensemble (random draws would depend on the batch's composition).
    attacks = [
        ("fgsm", FGSM(EPSILON)),
        ("pgd", PGD(EPSILON, steps=10, random_start=False)),
    ]
    report = evaluate_robustness(
        model,
        (x, y),
        EPSILON,
        attacks=attacks,
        sequential=False,
        verbose=0,
        checks=False,
        seed=5,
    )
    fgsm_alone = _accuracy(model, FGSM(EPSILON)(model, x, y, seed=5), y)
    assert report["per_attack"]["fgsm"] == pytest.approx(fgsm_alone)
    assert report["robust_accuracy"] <= min(report["per_attack"].values())
    assert "| under pgd |" in report.table()


def test_dataset_input_json_and_table(digits_model, tmp_path):
    model, x, y = digits_model
    attacks = [PGD(EPSILON, steps=5)]
    from_arrays = evaluate_robustness(
        model, (x, y), EPSILON, attacks=attacks, verbose=0, checks=False
    )
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    from_dataset = evaluate_robustness(
        model, dataset, EPSILON, attacks=attacks, verbose=0, checks=False
    )
    assert from_dataset["robust_accuracy"] == from_arrays["robust_accuracy"]
    path = tmp_path / "report.json"
    loaded = json.loads(from_arrays.to_json(path))
    assert json.loads(path.read_text()) == loaded
    assert loaded["settings"]["attacks"]["pgd"]["steps"] == 5
    assert loaded["settings"]["epsilon"] == EPSILON
    table = from_arrays.table()
    assert "| clean |" in table and "worst case" in table and "pgd" in table


def test_undefended_model_falls_to_zero_at_large_epsilon(digits_model):
    model, x, y = digits_model
    report = evaluate_robustness(
        model, (x, y), 0.3, attacks=[PGD(0.3, steps=20)], verbose=0, checks=False
    )
    assert report["robust_accuracy"] < 0.02


def test_adversarial_model_is_evaluated_through_its_base(digits_model):
    model, x, y = digits_model
    wrapped = kr.AdversarialModel(model)
    a = evaluate_robustness(
        wrapped,
        (x, y),
        EPSILON,
        attacks=[PGD(EPSILON, steps=3)],
        verbose=0,
        checks=False,
    )
    b = evaluate_robustness(
        model,
        (x, y),
        EPSILON,
        attacks=[PGD(EPSILON, steps=3)],
        verbose=0,
        checks=False,
    )
    assert a["robust_accuracy"] == b["robust_accuracy"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epsilon": -0.1}, "Received: epsilon=-0.1"),
        ({"norm": "l1"}, "Received: norm='l1'"),
        ({"attacks": "strong"}, "Received: attacks='strong'"),
        ({"attacks": []}, "Received: attacks=\\[\\]"),
    ],
)
def test_bad_arguments_raise(digits_model, kwargs, match):
    model, x, y = digits_model
    arguments = {"epsilon": EPSILON, "attacks": [PGD(EPSILON)], **kwargs}
    with pytest.raises(ValueError, match=match):
        evaluate_robustness(model, (x, y), verbose=0, checks=False, **arguments)


def test_bad_data_raises(digits_model):
    model, *_ = digits_model
    with pytest.raises(ValueError, match="Received: data="):
        evaluate_robustness(model, 3, EPSILON, attacks=[PGD(EPSILON)], verbose=0)


@pytest.mark.slow
def test_standard_ensemble_on_an_undefended_model(digits_model):
    model, x, y = digits_model
    x, y = x[:64], y[:64]
    report = evaluate_robustness(model, (x, y), 0.1, attacks="standard", verbose=0)
    assert list(report["per_attack"]) == ["apgd-ce", "apgd-t", "square"]
    values = list(report["per_attack"].values())
    assert values == sorted(values, reverse=True)  # cumulative
    assert report["robust_accuracy"] == values[-1]
    pgd = _accuracy(model, PGD(0.1, steps=20)(model, x, y, seed=0), y)
    # The ensemble is at least as strong as PGD-20 (observed on these 64
    # examples: clean 0.92, after APGD-CE 0.42, after APGD-T 0.375, after
    # Square 0.375; PGD-20 alone 0.42).
    assert report["robust_accuracy"] <= pgd + 0.02
    assert report["failed_checks"] == []
    assert report["settings"]["attacks"]["apgd-t"]["targeted"] is True


@pytest.mark.slow
def test_black_box_warning_on_a_gradient_masked_model(digits_model):
    from tests.evaluation.test_checks import _masked

    model, x, y = digits_model
    masked = _masked(model)
    attacks = [
        ("apgd-ce", kr.attacks.APGD(0.2, steps=20)),
        ("square", kr.attacks.Square(0.2, queries=300)),
    ]
    with pytest.warns(kr.evaluation.RobustnessWarning):
        report = evaluate_robustness(
            masked, (x[:100], y[:100]), 0.2, attacks=attacks, verbose=0
        )
    assert "black-box" in report["failed_checks"]
    assert "gradients" in report["failed_checks"]
    assert report["per_attack"]["square"] < report["per_attack"]["apgd-ce"] - 0.1

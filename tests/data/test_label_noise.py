import numpy as np
import pytest

from keras_robust.data import inject_label_noise, transition_matrix

CIFAR10_FLIPS = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
MNIST_FLIPS = {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}


def _balanced_labels(num_classes, per_class, seed=0):
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


# transition_matrix


def test_symmetric_matrix_excludes_true_class():
    matrix = transition_matrix(4, 0.3)
    assert matrix.dtype == np.float64
    np.testing.assert_allclose(np.diag(matrix), 0.7)
    off_diagonal = matrix[~np.eye(4, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, 0.1)


def test_symmetric_matrix_including_true_class():
    matrix = transition_matrix(4, 0.4, include_true_class=True)
    np.testing.assert_allclose(matrix, 0.6 * np.eye(4) + 0.1)


@pytest.mark.parametrize(
    "num_classes, kind, dataset",
    [
        (10, "symmetric", None),
        (10, "asymmetric", None),
        (10, "asymmetric", "mnist"),
        (100, "asymmetric", None),
        (5, {0: 1, 1: 0, 3: 4}, None),
    ],
)
@pytest.mark.parametrize("rate", [0.0, 0.37, 1.0])
def test_matrices_are_row_stochastic(num_classes, kind, dataset, rate):
    matrix = transition_matrix(num_classes, rate, kind, dataset=dataset)
    assert matrix.shape == (num_classes, num_classes)
    assert np.all(matrix >= 0)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    if rate == 0.0:
        np.testing.assert_array_equal(matrix, np.eye(num_classes))


@pytest.mark.parametrize(
    "dataset, flips", [("cifar10", CIFAR10_FLIPS), ("mnist", MNIST_FLIPS)]
)
def test_asymmetric_matrix_flips_listed_pairs_only(dataset, flips):
    rate = 0.4
    matrix = transition_matrix(10, rate, "asymmetric", dataset=dataset)
    expected = np.eye(10)
    for source, target in flips.items():
        expected[source, source] = 1.0 - rate
        expected[source, target] = rate
    np.testing.assert_allclose(matrix, expected)


def test_asymmetric_dataset_inferred_from_num_classes():
    np.testing.assert_array_equal(
        transition_matrix(10, 0.3, "asymmetric"),
        transition_matrix(10, 0.3, "asymmetric", dataset="cifar10"),
    )
    np.testing.assert_array_equal(
        transition_matrix(100, 0.3, "asymmetric"),
        transition_matrix(100, 0.3, "asymmetric", dataset="cifar100"),
    )


def test_cifar100_matrix_cycles_within_blocks_of_five():
    rate = 0.2
    matrix = transition_matrix(100, rate, "asymmetric")
    for i in range(100):
        target = 5 * (i // 5) + (i + 1) % 5
        expected = np.zeros(100)
        expected[i] = 1.0 - rate
        expected[target] = rate
        np.testing.assert_allclose(matrix[i], expected)
    assert matrix[4, 0] == rate and matrix[99, 95] == rate


def test_mapping_kind():
    matrix = transition_matrix(4, 0.25, {0: 2, 3: 1})
    expected = np.eye(4)
    expected[0, [0, 2]] = [0.75, 0.25]
    expected[3, [3, 1]] = [0.75, 0.25]
    np.testing.assert_allclose(matrix, expected)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"rate": -0.1}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"rate": True}, "rate"),
        ({"rate": "0.2"}, "rate"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 2.0}, "num_classes"),
        ({"num_classes": True}, "num_classes"),
        ({"kind": "pairflip"}, "kind"),
        ({"kind": 3}, "kind"),
        ({"kind": {0: 10}}, "kind"),
        ({"kind": {-1: 0}}, "kind"),
        ({"kind": {2: 2}}, "kind"),
        ({"kind": {0.5: 1}}, "kind"),
        ({"kind": "asymmetric", "dataset": "imagenet"}, "dataset"),
        ({"kind": "asymmetric", "num_classes": 12}, "num_classes"),
        ({"kind": "asymmetric", "num_classes": 100, "dataset": "mnist"}, "num_classes"),
    ],
)
def test_transition_matrix_invalid_arguments_raise(kwargs, name):
    arguments = {"num_classes": 10, "rate": 0.2, **kwargs}
    with pytest.raises(ValueError, match=rf"Received: {name}="):
        transition_matrix(**arguments)


# inject_label_noise


def test_symmetric_noise_rate_and_transition():
    num_classes, rate = 10, 0.4
    labels = _balanced_labels(num_classes, 2000)
    noisy, realised = inject_label_noise(labels, rate, seed=1)
    assert abs(np.mean(noisy != labels) - rate) < 0.01
    # A flipped label always differs from the clean one: the diagonal is the
    # fraction kept, 1 - rate, and the rest spreads evenly over other classes.
    np.testing.assert_allclose(np.diag(realised), 1.0 - rate, atol=0.04)
    off_diagonal = realised[~np.eye(num_classes, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, rate / (num_classes - 1), atol=0.02)
    np.testing.assert_allclose(realised.sum(axis=1), 1.0)


def test_realised_transition_counts_the_flips():
    labels = _balanced_labels(5, 300)
    noisy, realised = inject_label_noise(labels, 0.3, seed=2)
    for clean in range(5):
        members = labels == clean
        for target in range(5):
            assert realised[clean, target] == pytest.approx(
                np.mean(noisy[members] == target)
            )


def test_symmetric_noise_including_true_class():
    num_classes, rate = 10, 0.5
    labels = _balanced_labels(num_classes, 2000)
    noisy, realised = inject_label_noise(labels, rate, seed=3, include_true_class=True)
    effective = rate * (num_classes - 1) / num_classes
    assert abs(np.mean(noisy != labels) - effective) < 0.01
    np.testing.assert_allclose(np.diag(realised), 1.0 - effective, atol=0.04)


@pytest.mark.parametrize(
    "dataset, flips", [("cifar10", CIFAR10_FLIPS), ("mnist", MNIST_FLIPS)]
)
def test_asymmetric_noise_flips_listed_pairs_only(dataset, flips):
    rate = 0.4
    labels = _balanced_labels(10, 2000)
    noisy, realised = inject_label_noise(
        labels, rate, "asymmetric", dataset=dataset, seed=4
    )
    changed = noisy != labels
    for source in np.unique(labels[changed]):
        assert source in flips
        assert np.all(noisy[changed & (labels == source)] == flips[source])
    for source, target in flips.items():
        assert abs(realised[source, target] - rate) < 0.04
    for clean in set(range(10)) - set(flips):
        np.testing.assert_array_equal(realised[clean], np.eye(10)[clean])
    # The overall realised rate is rate times the share of source classes.
    expected_rate = rate * len(flips) / 10
    assert abs(np.mean(changed) - expected_rate) < 0.01


def test_cifar100_noise_stays_within_blocks():
    rate = 0.4
    labels = _balanced_labels(100, 100)
    noisy, _ = inject_label_noise(labels, rate, "asymmetric", seed=5)
    np.testing.assert_array_equal(noisy // 5, labels // 5)
    changed = noisy != labels
    np.testing.assert_array_equal(
        noisy[changed], 5 * (labels[changed] // 5) + (labels[changed] + 1) % 5
    )
    assert abs(np.mean(changed) - rate) < 0.02


def test_mapping_noise():
    labels = _balanced_labels(4, 1000)
    noisy, _ = inject_label_noise(labels, 0.5, {0: 3}, seed=6)
    changed = noisy != labels
    assert np.all(labels[changed] == 0)
    assert np.all(noisy[changed] == 3)
    assert abs(np.mean(changed[labels == 0]) - 0.5) < 0.05


def test_rate_zero_and_one():
    labels = _balanced_labels(3, 50)
    unchanged, realised = inject_label_noise(labels, 0.0, seed=0)
    np.testing.assert_array_equal(unchanged, labels)
    np.testing.assert_array_equal(realised, np.eye(3))
    flipped, _ = inject_label_noise(labels, 1.0, seed=0)
    assert np.all(flipped != labels)


def test_same_seed_same_labels_different_seed_different_labels():
    labels = _balanced_labels(10, 100)
    first, first_realised = inject_label_noise(labels, 0.3, seed=7)
    second, second_realised = inject_label_noise(labels, 0.3, seed=7)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first_realised, second_realised)
    third, _ = inject_label_noise(labels, 0.3, seed=8)
    assert np.any(first != third)


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
@pytest.mark.parametrize("column", [False, True])
def test_shape_and_dtype_preserved(dtype, column):
    labels = _balanced_labels(10, 20).astype(dtype)
    if column:
        labels = labels[:, None]
    original = labels.copy()
    noisy, realised = inject_label_noise(labels, 0.5, seed=0)
    assert noisy.shape == labels.shape
    assert noisy.dtype == labels.dtype
    assert realised.shape == (10, 10)
    assert 0 < np.mean(noisy != labels) < 1
    # The input is not modified in place.
    np.testing.assert_array_equal(labels, original)


def test_num_classes_inferred_or_given():
    labels = np.array([0, 1, 2, 2, 1, 0])
    _, realised = inject_label_noise(labels, 0.5, seed=0)
    assert realised.shape == (3, 3)
    noisy, realised = inject_label_noise(labels, 0.5, num_classes=6, seed=0)
    assert realised.shape == (6, 6)
    # Absent classes get the identity row.
    np.testing.assert_array_equal(realised[3:], np.eye(6)[3:])
    assert noisy.max() < 6


@pytest.mark.parametrize(
    "labels, kwargs, name",
    [
        (np.array([0, 1, -1]), {}, "labels"),
        (np.array([0, 1, 5]), {"num_classes": 3}, "labels"),
        (np.array([0.0, 1.0]), {}, "labels"),
        (np.zeros((4, 2), dtype="int64"), {}, "labels"),
        (np.array([0, 0, 0]), {}, "num_classes"),
        (np.array([], dtype="int64"), {}, "num_classes"),
        (np.array([0, 1]), {"rate": 2.0}, "rate"),
        (np.array([0, 1]), {"kind": "uniform"}, "kind"),
        (np.array([0, 1], dtype="uint8"), {"num_classes": 300}, "labels"),
    ],
)
def test_inject_invalid_arguments_raise(labels, kwargs, name):
    arguments = {"rate": 0.2, **kwargs}
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}"):
        inject_label_noise(labels, **arguments)

import numpy as np
import pytest

from keras_robust.data import load_digits


def test_shapes_dtypes_and_range():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (1347, 8, 8, 1)
    assert x_test.shape == (450, 8, 8, 1)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    for x in (x_train, x_test):
        assert x.dtype == np.float32
        assert x.min() == 0.0 and x.max() == 1.0
    for y in (y_train, y_test):
        assert y.dtype == np.int64
        np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_split_is_stratified():
    (_, y_train), (_, y_test) = load_digits(test_fraction=0.3)
    assert len(y_test) / (len(y_train) + len(y_test)) == pytest.approx(0.3, abs=0.01)
    train_share = np.bincount(y_train) / len(y_train)
    test_share = np.bincount(y_test) / len(y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_deterministic_by_seed():
    (x_a, y_a), (x_test_a, _) = load_digits(seed=1)
    (x_b, y_b), (x_test_b, _) = load_digits(seed=1)
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_array_equal(x_test_a, x_test_b)
    (x_c, y_c), _ = load_digits(seed=2)
    assert not np.array_equal(y_a, y_c)


@pytest.mark.parametrize("test_fraction", [0.0, 1.0, -0.2, 1.5, "0.2", True, None])
def test_invalid_test_fraction_raises(test_fraction):
    with pytest.raises(ValueError, match=r"`test_fraction`.*Received: test_fraction="):
        load_digits(test_fraction=test_fraction)

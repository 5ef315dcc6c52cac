"""The tfds pipeline, on tfds's offline mock data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_robust.data import NUM_CLASSES, load_tfds, prepare_images


@pytest.mark.parametrize(
    "name, shape", [("cifar10", (32, 32, 3)), ("mnist", (28, 28, 1))]
)
def test_batches_of_unit_range_images_and_int_labels(name, shape):
    with tfds.testing.mock_data(num_examples=20):
        batches = list(load_tfds(name, "test", batch_size=8))
    x, y = batches[0]
    assert x.shape == (8, *shape) and x.dtype == "float32"
    assert y.dtype == "int64"
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
    assert np.all((y.numpy() >= 0) & (y.numpy() < NUM_CLASSES[name]))
    assert sum(len(b[1]) for b in batches) == 20  # keeps the last partial batch


def test_training_pipeline_shuffles_augments_and_drops_remainder():
    with tfds.testing.mock_data(num_examples=20):
        plain = np.concatenate(
            [x for x, _ in load_tfds("cifar10", "train", batch_size=8)]
        )
        first = [
            x.numpy() for x, _ in load_tfds("cifar10", batch_size=8, training=True)
        ]
        again = [
            x.numpy() for x, _ in load_tfds("cifar10", batch_size=8, training=True)
        ]
        other = [
            x.numpy()
            for x, _ in load_tfds("cifar10", batch_size=8, training=True, seed=1)
        ]
    assert [len(b) for b in first] == [8, 8]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
    assert not np.array_equal(np.concatenate(first), np.concatenate(other))
    # Crops and flips change the pixels: no augmented image equals a plain one.
    augmented = np.concatenate(first)
    matches = [np.any(np.all(plain == image, axis=(1, 2, 3))) for image in augmented]
    assert not all(matches)


def test_bad_batch_size_raises():
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        load_tfds("cifar10", batch_size=0)


def test_a_real_builder_resolves_its_code(tmp_path):
    # tensorflow-datasets imports `importlib_resources` (undeclared) when it
    # locates a dataset's code, before any download; a fresh install must
    # have it (keras-robust declares it).
    builder = tfds.builder("mnist", data_dir=str(tmp_path))
    assert builder.code_path.name.endswith(".py")


def _labels(dataset):
    return np.concatenate([y.numpy() for _, y in dataset])


def test_label_noise_is_seeded_per_example_and_near_the_rate():
    with tfds.testing.mock_data(num_examples=400):
        clean = _labels(load_tfds("cifar10", "train", batch_size=100))
        noisy = _labels(load_tfds("cifar10", "train", batch_size=100, label_noise=0.4))
        again = _labels(
            load_tfds("cifar10", "train", batch_size=64, label_noise=0.4, cache=True)
        )
        other = _labels(
            load_tfds("cifar10", "train", batch_size=100, label_noise=0.4, noise_seed=1)
        )
    np.testing.assert_array_equal(noisy, again)  # batching and caching: same
    assert not np.array_equal(noisy, other)
    realised = np.mean(noisy != clean)
    # 400 draws of a 0.4 flip: 4.9 standard deviations either side.
    assert 0.28 < realised < 0.52
    assert np.all((noisy >= 0) & (noisy < 10))


def test_asymmetric_noise_flips_only_the_protocol_classes():
    with tfds.testing.mock_data(num_examples=300):
        clean = _labels(load_tfds("cifar10", "train", batch_size=100))
        noisy = _labels(
            load_tfds(
                "cifar10",
                "train",
                batch_size=100,
                label_noise=1.0,
                noise_kind="asymmetric",
            )
        )
    flips = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
    expected = np.array([flips.get(int(c), int(c)) for c in clean])
    np.testing.assert_array_equal(noisy, expected)


def test_svhn_alias_and_statistics():
    from keras_robust.data import STATISTICS

    with tfds.testing.mock_data(num_examples=10):
        x, y = next(iter(load_tfds("svhn", "test", batch_size=10)))
    assert x.shape == (10, 32, 32, 3)
    assert set(STATISTICS) == set(NUM_CLASSES)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cache": 1}, "cache=1"),
        ({"shuffle_buffer": 0}, "shuffle_buffer=0"),
        ({"noise_seed": -1}, "noise_seed=-1"),
        ({"label_noise": 1.5}, "1.5"),
    ],
)
def test_bad_pipeline_arguments(kwargs, message):
    with tfds.testing.mock_data(num_examples=10):
        with pytest.raises(ValueError, match=message):
            load_tfds("cifar10", **kwargs)


def _uint8_images(count=10, shape=(6, 5, 3)):
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(count, *shape), dtype=np.uint8)
    labels = np.arange(count) % 3
    return images, labels


def test_prepare_images_scales_and_batches_any_dataset():
    images, labels = _uint8_images()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    batches = list(prepare_images(dataset, batch_size=4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x = np.concatenate([x for x, _ in batches])
    assert x.dtype == np.float32 and batches[0][1].dtype == tf.int64
    np.testing.assert_array_equal(x, images.astype("float32") / 255.0)
    training = list(prepare_images(dataset, batch_size=4, training=True, seed=1))
    assert [len(y) for _, y in training] == [4, 4]


def test_prepare_images_augments_with_padded_crops_and_flips():
    images, labels = _uint8_images(count=16)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))

    def augmented(seed):
        pipeline = prepare_images(dataset, batch_size=16, augment=True, seed=seed)
        return next(iter(pipeline))[0].numpy()

    first = augmented(0)
    np.testing.assert_array_equal(first, augmented(0))
    assert not np.array_equal(first, augmented(1))
    # Each image is a window of the original zero-padded by 4, maybe flipped.
    height, width = images.shape[1:3]
    for image, original in zip(first, images.astype("float32") / 255.0, strict=True):
        padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
        windows = [
            candidate
            for top in range(9)
            for left in range(9)
            for window in [padded[top : top + height, left : left + width]]
            for candidate in (window, window[:, ::-1])
        ]
        assert any(np.array_equal(image, window) for window in windows)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"shuffle_buffer": -1}, "shuffle_buffer=-1"),
        ({"cache": None}, "cache=None"),
    ],
)
def test_prepare_images_bad_arguments(kwargs, message):
    images, labels = _uint8_images()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    with pytest.raises(ValueError, match=message):
        prepare_images(dataset, **kwargs)


def test_prepare_images_needs_a_dataset_of_pairs():
    images, labels = _uint8_images()
    with pytest.raises(ValueError, match="Received: dataset of type ndarray"):
        prepare_images(images)
    dictionaries = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": labels}
    )
    with pytest.raises(ValueError, match=r"\(image, label\) pairs.*Received: elements"):
        prepare_images(dictionaries)

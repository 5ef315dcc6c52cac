"""Image classification datasets through TensorFlow Datasets (tfds)."""

import importlib

import numpy as np

from keras_robust.validation import validate_integer


class _LazyTensorFlow:
    """`tensorflow`, imported on first use: pipelines are tf.data on every
    Keras backend, and the JAX backend runs without TensorFlow installed
    until a pipeline is built."""

    def __getattr__(self, name):
        return getattr(importlib.import_module("tensorflow"), name)


tf = _LazyTensorFlow()

# Number of classes of the datasets the examples and the CLI know by name.
NUM_CLASSES = {
    "cifar10": 10,
    "cifar100": 100,
    "svhn_cropped": 10,
    "mnist": 10,
    "fashion_mnist": 10,
}
# Other names accepted for them.
ALIASES = {"svhn": "svhn_cropped", "fashion-mnist": "fashion_mnist"}
# Per-channel mean and standard deviation of the training images in [0, 1],
# for the `mean`/`std` of the zoo models' standardisation layer.
STATISTICS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn_cropped": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}
# Datasets trained with the standard CIFAR augmentation (pad-4 crop, flip).
_CROP_AND_FLIP = ("cifar10", "cifar100")
# Datasets with an asymmetric label-noise protocol (see `transition_matrix`).
_ASYMMETRIC = ("cifar10", "cifar100", "mnist")


def canonical_name(name):
    """The tfds name of a dataset given by name or alias (`"svhn"`)."""
    return ALIASES.get(name, name)


def _noisy_labels(dataset, name, label_noise, noise_kind, seed, num_classes):
    """Resamples each label from row `T[y]` of the transition matrix.

    Example `i` (in the split's fixed order) draws with the stateless seed
    `(seed, i)`, so the noisy labels do not depend on shuffling, batching
    or the epoch: the same seed gives the same noisy data set.
    """
    from keras_robust.data.label_noise import transition_matrix

    if num_classes is None:
        raise ValueError(
            "Label noise needs the number of classes. Received: a dataset "
            f"name={name!r} that keras_robust does not know; pass num_classes"
        )
    matrix = transition_matrix(
        num_classes,
        label_noise,
        noise_kind,
        dataset=name if name in _ASYMMETRIC else None,
    )
    with np.errstate(divide="ignore"):
        log_matrix = tf.constant(np.log(matrix), tf.float32)

    def corrupt(index, example):
        image, label = example
        logits = tf.gather(log_matrix, label)[tf.newaxis]
        noisy = tf.random.stateless_categorical(
            logits, 1, seed=tf.stack([tf.cast(seed, tf.int64), index]), dtype=tf.int64
        )
        return image, noisy[0, 0]

    return dataset.enumerate().map(corrupt, num_parallel_calls=tf.data.AUTOTUNE)


def _crop_and_flip(image, seed):
    height, width, channels = image.shape
    padded = tf.image.resize_with_crop_or_pad(image, height + 8, width + 8)
    cropped = tf.image.stateless_random_crop(
        padded, (height, width, channels), seed=seed
    )
    return tf.image.stateless_random_flip_left_right(cropped, seed=seed[::-1])


def load_tfds(
    name,
    split="train",
    *,
    batch_size=128,
    training=False,
    augment=None,
    seed=0,
    data_dir=None,
    shuffle_buffer=10_000,
    label_noise=None,
    noise_kind="symmetric",
    noise_seed=0,
    cache=False,
    num_classes=None,
):
    """Loads a tfds image classification dataset as `(image, label)` batches.

    Images become float32 in `[0, 1]` (the input range the attacks assume),
    labels int64. For training the data is shuffled (reproducibly by `seed`)
    and, for CIFAR, augmented with the standard 4-pixel-pad random crop and
    horizontal flip; batches then drop the remainder. With `label_noise`,
    labels are corrupted by `transition_matrix(K, label_noise, noise_kind)`
    (each example always gets the same noisy label for one `noise_seed`).

    Args:
        name: tfds name, e.g. `"cifar10"`, `"cifar100"`, `"svhn_cropped"`
            (or `"svhn"`), `"mnist"`, `"fashion_mnist"`.
        split: tfds split, e.g. `"train"` or `"test"`.
        batch_size: Examples per batch.
        training: Shuffle, augment and drop the last partial batch.
        augment: Override the augmentation choice (`None`: CIFAR only).
        seed: Seed of shuffling and augmentation.
        data_dir: tfds data directory (default: tfds's own).
        shuffle_buffer: Shuffle buffer size.
        label_noise: `None`, or the noise rate in `[0, 1]` of synthetic
            label noise (see `keras_robust.data.inject_label_noise`).
        noise_kind: `"symmetric"` or `"asymmetric"` (CIFAR-10, CIFAR-100
            and MNIST protocols).
        noise_seed: Integer seed of the label noise.
        cache: `False`, `True` (cache the decoded images in memory after the
            first epoch), or a file path for `tf.data.Dataset.cache`.
        num_classes: Number of classes, for a dataset not in `NUM_CLASSES`
            (needed only with `label_noise`).

    Returns:
        A batched, prefetched `tf.data.Dataset`.

    Raises:
        ValueError: If `batch_size` or `shuffle_buffer` is not a positive
            integer, or the label noise or `cache` settings are not valid.
    """
    import tensorflow_datasets as tfds

    validate_integer("batch_size", batch_size)
    validate_integer("shuffle_buffer", shuffle_buffer)
    validate_integer("noise_seed", noise_seed, low=0)
    _validate_cache(cache)
    name = canonical_name(name)
    num_classes = num_classes or NUM_CLASSES.get(name)
    dataset = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir)
    if label_noise is not None:
        dataset = _noisy_labels(
            dataset, name, label_noise, noise_kind, noise_seed, num_classes
        )
    if augment is None:
        augment = training and name in _CROP_AND_FLIP
    return prepare_images(
        dataset,
        batch_size=batch_size,
        training=training,
        augment=augment,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        cache=cache,
    )


def _validate_cache(cache):
    if not isinstance(cache, bool | str):
        raise ValueError(
            "Argument `cache` must be True, False or a file path. "
            f"Received: cache={cache!r}"
        )


def prepare_images(
    dataset,
    *,
    batch_size=128,
    training=False,
    augment=False,
    seed=0,
    shuffle_buffer=10_000,
    cache=False,
):
    """The input pipeline of `load_tfds`, for any dataset of `(image, label)`.

    Images (uint8 in `[0, 255]`, `[height, width, channels]`) become float32
    in `[0, 1]`, labels int64. For training the examples are shuffled
    (reproducibly by `seed`) and the last partial batch is dropped; with
    `augment`, each image gets the standard CIFAR augmentation, a random
    crop of the image zero-padded by 4 pixels and a random horizontal flip.
    Decoding, augmentation and batching run in parallel on the host's CPU
    cores and batches are prefetched, so they are ready while the
    accelerator runs the previous step (benchmarks/RESULTS.md measures the
    pipeline against the training step).

    Args:
        dataset: A `tf.data.Dataset` of `(image, label)` pairs.
        batch_size: Examples per batch.
        training: Shuffle and drop the last partial batch.
        augment: Apply the random crop and flip.
        seed: Seed of shuffling and augmentation.
        shuffle_buffer: Shuffle buffer size.
        cache: `False`, `True` (cache the decoded images in memory after the
            first epoch), or a file path for `tf.data.Dataset.cache`.

    Returns:
        A batched, prefetched `tf.data.Dataset`.

    Raises:
        ValueError: If `dataset` is not a `tf.data.Dataset` of pairs,
            `batch_size` or `shuffle_buffer` is not a positive integer, or
            `cache` is not valid.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "Argument `dataset` must be a tf.data.Dataset of (image, label) "
            f"pairs. Received: dataset of type {type(dataset).__name__}"
        )
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(
            "Argument `dataset` must yield (image, label) pairs (e.g. tfds's "
            f"`as_supervised=True`). Received: elements {spec}"
        )
    validate_integer("batch_size", batch_size)
    validate_integer("shuffle_buffer", shuffle_buffer)
    _validate_cache(cache)
    dataset = dataset.map(
        lambda image, label: (
            tf.cast(image, tf.float32) / 255.0,
            tf.cast(label, tf.int64),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if cache is not False:
        dataset = dataset.cache("" if cache is True else cache)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda example, pair: (_crop_and_flip(example[0], pair), example[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.prefetch(tf.data.AUTOTUNE)

"""Image classification datasets through TensorFlow Datasets (tfds)."""

import tensorflow as tf

from keras_robust.validation import validate_integer

# Number of classes of the datasets the examples and the CLI know by name.
NUM_CLASSES = {
    "cifar10": 10,
    "cifar100": 100,
    "svhn_cropped": 10,
    "mnist": 10,
    "fashion_mnist": 10,
}
# Datasets trained with the standard CIFAR augmentation (pad-4 crop, flip).
_CROP_AND_FLIP = ("cifar10", "cifar100")


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
):
    """Loads a tfds image classification dataset as `(image, label)` batches.

    Images become float32 in `[0, 1]` (the input range the attacks assume),
    labels int64. For training the data is shuffled (reproducibly by `seed`)
    and, for CIFAR, augmented with the standard 4-pixel-pad random crop and
    horizontal flip; batches then drop the remainder.

    Args:
        name: tfds name, e.g. `"cifar10"`, `"cifar100"`, `"svhn_cropped"`,
            `"mnist"`.
        split: tfds split, e.g. `"train"` or `"test"`.
        batch_size: Examples per batch.
        training: Shuffle, augment and drop the last partial batch.
        augment: Override the augmentation choice (`None`: CIFAR only).
        seed: Seed of shuffling and augmentation.
        data_dir: tfds data directory (default: tfds's own).
        shuffle_buffer: Shuffle buffer size.

    Returns:
        A batched, prefetched `tf.data.Dataset`.

    Raises:
        ValueError: If `batch_size` is not a positive integer.
    """
    import tensorflow_datasets as tfds

    validate_integer("batch_size", batch_size)
    dataset = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir)
    dataset = dataset.map(
        lambda image, label: (
            tf.cast(image, tf.float32) / 255.0,
            tf.cast(label, tf.int64),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if augment is None:
        augment = training and name in _CROP_AND_FLIP
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

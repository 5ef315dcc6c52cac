"""Trains an AdversarialModel under a tf.distribute strategy, for the tests.

Run as a script (in its own process, since logical devices and the
collective runtime must be configured before TensorFlow starts):

    python distributed_run.py MODE OUTPUT [RANDOM_START]

MODE is "single" (one device), "mirrored" (MirroredStrategy over two
logical CPU devices) or "multiworker" (MultiWorkerMirroredStrategy; set
TF_CONFIG). The final weights and the History are written to OUTPUT (.npz).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 32
STEPS = 4


def make_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(GLOBAL_BATCH * STEPS, 12)).astype("float32")
    y = (x[:, :4].argmax(axis=-1)).astype("int64")
    return x, y


def main(mode, output, random_start):
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()

    import keras

    import keras_robust as kr

    keras.utils.set_random_seed(0)
    x, y = make_data()
    with strategy.scope():
        base = keras.Sequential(
            [
                keras.Input((12,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(4),
            ]
        )
        model = kr.AdversarialModel(
            base,
            attack=kr.attacks.PGD(epsilon=0.05, steps=3, random_start=random_start),
            eval_attack=kr.attacks.PGD(epsilon=0.05, steps=3, random_start=False),
            seed=1,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=kr.losses.SoftTargetCrossentropy(),
            metrics=["accuracy"],
        )
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    if mode == "multiworker":
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        dataset = dataset.with_options(options)
    history = model.fit(
        dataset, epochs=2, validation_data=dataset, verbose=0, shuffle=False
    )
    weights = {f"w{i}": w for i, w in enumerate(base.get_weights())}
    np.savez(
        output,
        history=json.dumps(history.history),
        replicas=strategy.num_replicas_in_sync,
        **weights,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "1")

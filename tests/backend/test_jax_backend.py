"""keras_robust on Keras's JAX backend, in processes without TensorFlow.

Keras picks its backend once per process, so each check runs a script in a
child process with `KERAS_BACKEND=jax`, where importing TensorFlow fails:
the training step, the attacks and the evaluation must need none of it.
The training step is compared with this (TensorFlow) process's on the
same weights and batch.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_robust as kr

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[2]

# Blocks TensorFlow, then imports keras_robust on JAX.
PRELUDE = """
import sys
sys.modules["tensorflow"] = None
import json
import numpy as np
import keras
import keras_robust as kr
assert keras.backend.backend() == "jax"
"""


def run_script(body, tmp_path, backend="jax", definitions="", tensorflow=False):
    """Runs `PRELUDE + definitions + body` in a child process (TensorFlow
    importable only with `tensorflow=True`)."""
    script = tmp_path / "script.py"
    prelude = PRELUDE if backend == "jax" else ""
    if tensorflow:
        prelude = prelude.replace('sys.modules["tensorflow"] = None\n', "")
    script.write_text(prelude + definitions + textwrap.dedent(body))
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    return result


def output_of(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


MODEL = """
def small_cnn():
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(6, 3, padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])


def fixed_start(objective):
    # The objective, its attack starting from a fixed point near `x`: TRADES
    # and MART start from Gaussian noise, which no two backends draw alike.
    if objective == "madry":
        return objective
    base = {"trades": kr.training.TRADES, "mart": kr.training.MART}[objective]

    class FixedStart(base):
        def attack_start(self, batch, seed):
            noise = 0.001 * keras.ops.sin(1000.0 * batch.x)
            return keras.ops.clip(batch.x + noise, 0.0, 1.0)

    return FixedStart()


def adversarial(objective, attack_steps=3):
    # "adr": Madry's objective toward ADR's targets from an EMA teacher.
    adr = objective == "adr"
    model = kr.AdversarialModel(
        small_cnn(),
        attack=kr.attacks.PGD(epsilon=8 / 255, steps=attack_steps, random_start=False),
        objective=fixed_start("madry" if adr else objective),
        eval_attack=None,
        teacher=kr.training.EMA(decay=0.5) if adr else None,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=kr.losses.ADRLoss() if adr else kr.losses.SoftTargetCrossentropy(),
    )
    return model
"""


@pytest.mark.parametrize(
    "attack",
    # APGD-25 in train mode: a loop whose passes update the moving statistics.
    ["kr.attacks.PGD(epsilon=8 / 255, steps=3)", "kr.attacks.APGD(8 / 255, steps=25)"],
)
def test_training_runs_without_tensorflow(attack, tmp_path):
    result = run_script(
        f"""
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(64, 8, 8, 3)).astype("float32")
        y = rng.integers(0, 10, 64)
        model = kr.AdversarialModel(small_cnn(), attack={attack})
        model.compile(
            optimizer="sgd",
            loss=kr.losses.SoftTargetCrossentropy(),
            metrics=["accuracy"],
        )
        bn = model.base_model.layers[1]
        before = np.asarray(bn.moving_mean).copy()
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        moved = float(np.abs(np.asarray(bn.moving_mean) - before).max())
        logs = model.evaluate(x, y, verbose=0, return_dict=True)
        print(json.dumps({{
            "steps": int(model.training_step.numpy()),
            "moved": moved,
            "loss": history.history["loss"],
            "logs": {{k: float(v) for k, v in logs.items()}},
        }}))
        """,
        tmp_path,
        definitions=MODEL,
    )
    out = output_of(result)
    assert out["steps"] == 8
    assert out["moved"] > 0
    assert all(np.isfinite(out["loss"]))
    assert 0 <= out["logs"]["robust_accuracy"] <= out["logs"]["accuracy"] + 1e-6


@pytest.mark.parametrize(
    "objective, steps",
    # 25 steps: PGD loops instead of unrolling, carrying the moving
    # statistics that its train-mode passes update through the loop.
    [("madry", 3), ("madry", 25), ("trades", 3), ("mart", 3), ("adr", 3)],
)
def test_a_training_step_equals_tensorflows(objective, steps, tmp_path):
    namespace = {"keras": keras, "kr": kr, "np": np}
    exec(textwrap.dedent(MODEL), namespace)
    keras.utils.set_random_seed(1)
    model = namespace["adversarial"](objective, steps)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(32, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 10, 32)
    model.build((None, 8, 8, 3))
    initial = model.get_weights()
    arrays = {f"arr_{i}": value for i, value in enumerate(initial)}
    np.savez(tmp_path / "start.npz", x=x, y=y, **arrays)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    expected = model.get_weights()

    result = run_script(
        f"""
        data = np.load("start.npz")
        model = adversarial({objective!r}, {steps})
        model.build((None, 8, 8, 3))
        model.set_weights([data[f"arr_{{i}}"] for i in range({len(initial)})])
        model.fit(data["x"], data["y"], batch_size=16, epochs=1, shuffle=False,
                  verbose=0)
        np.savez("end.npz", *model.get_weights())
        print(json.dumps({{"done": True}}))
        """,
        tmp_path,
        definitions=MODEL,
    )
    assert output_of(result)["done"]
    end = np.load(tmp_path / "end.npz")
    changed = 0
    for i, (want, start) in enumerate(zip(expected, initial, strict=True)):
        # Each update agrees within 1% of its size: rounding differs between
        # the backends, and a sign-gradient attack amplifies it where a
        # gradient component is close to zero.
        update = np.linalg.norm(want - start)
        error = np.linalg.norm(end[f"arr_{i}"] - want)
        assert error <= 0.01 * update + 1e-6, (i, error, update)
        changed += bool(update > 1e-4)
    # The student's weights, moving statistics and step counter moved (all
    # but the convolution's bias, which the batch normalisation after it
    # cancels): 8 arrays, and the teacher's with ADR.
    assert changed >= (15 if objective == "adr" else 8)


def test_attacks_and_evaluation_run_on_the_current_weights(tmp_path):
    result = run_script(
        """
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).uniform(size=(48, 6, 6, 1)).astype("float32")
        y = np.argmax(x.reshape(48, -1)[:, :3], axis=-1)

        def mlp(seed):
            keras.utils.set_random_seed(seed)
            return keras.Sequential([
                keras.Input((6, 6, 1)), keras.layers.Flatten(),
                keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3),
            ])

        model, other = mlp(0), mlp(1)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
        model.fit(x, y, epochs=60, verbose=0)
        attack = kr.attacks.PGD(epsilon=0.1, steps=10, random_start=False)
        adversarial = attack(model, x, y)
        accuracy = lambda m, inputs: float(
            np.mean(np.argmax(m.predict(inputs, verbose=0), -1) == y))
        out = {
            "clean": accuracy(model, x),
            "pgd": accuracy(model, adversarial),
            "distance": float(np.abs(adversarial - x).max()),
            "low": float(adversarial.min()), "high": float(adversarial.max()),
        }
        # Unseeded calls draw new random starts (the generator advances).
        random_pgd = kr.attacks.PGD(epsilon=0.1, steps=1)
        out["unseeded_differ"] = bool(
            np.any(random_pgd(model, x, y) != random_pgd(model, x, y))
        )
        # Seeded calls repeat.
        out["seeded_equal"] = bool(
            np.all(random_pgd(model, x, y, seed=3) == random_pgd(model, x, y, seed=3))
        )
        # New weights in the same model: the cached function must see them.
        expected = attack(other, x, y)
        model.set_weights(other.get_weights())
        out["same_as_fresh"] = float(np.abs(attack(model, x, y) - expected).max())
        square = kr.attacks.Square(epsilon=0.1, queries=200)
        out["square_distance"] = float(np.abs(square(model, x, y, seed=0) - x).max())
        report = kr.evaluation.evaluate_robustness(
            model, (x, y), epsilon=0.1, attacks=["apgd-ce", "square"], verbose=0
        )
        out["worst"] = float(report["robust_accuracy"])
        out["clean_after"] = accuracy(model, x)
        print(json.dumps(out))
        """,
        tmp_path,
    )
    out = output_of(result)
    assert out["clean"] >= 0.6
    assert out["pgd"] < out["clean"] - 0.1
    assert out["distance"] <= 0.1 + 1e-6
    assert 0.0 <= out["low"] and out["high"] <= 1.0
    assert out["same_as_fresh"] == 0.0
    assert out["unseeded_differ"] and out["seeded_equal"]
    assert out["square_distance"] <= 0.1 + 1e-6
    assert out["worst"] <= out["clean_after"]


def test_an_attack_in_train_mode_updates_the_moving_statistics(tmp_path):
    result = run_script(
        """
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).uniform(size=(32, 6, 6, 1)).astype("float32")
        y = np.arange(32) % 4
        model = keras.Sequential([
            keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(8),
            keras.layers.BatchNormalization(), keras.layers.Dense(4),
        ])
        mean = model.layers[2].moving_mean
        out = {}
        for steps in (3, 25):  # unrolled, and a loop
            attack = kr.attacks.PGD(epsilon=0.1, steps=steps, random_start=False)
            before = np.asarray(mean).copy()
            attack(model, x, y, training=False)
            out[f"eval_{steps}"] = float(np.abs(np.asarray(mean) - before).max())
            attack(model, x, y, training=True)
            after = np.asarray(mean)
            # Momentum 0.99 from zero: each train-mode pass moves the mean
            # 1% of the way to the batch mean; 1 - 0.99**steps of the way.
            batch_mean = np.asarray(model.layers[1](model.layers[0](x))).mean(0)
            out[f"fraction_{steps}"] = float(
                np.median((after - before) / (batch_mean - before))
            )
            mean.assign(np.zeros_like(after))
        print(json.dumps(out))
        """,
        tmp_path,
    )
    out = output_of(result)
    for steps in (3, 25):
        assert out[f"eval_{steps}"] == 0.0
        # One pass per attack step (the gradient's forward pass); the attacked
        # batches' means differ a little from the clean one's.
        assert out[f"fraction_{steps}"] == pytest.approx(1 - 0.99**steps, rel=0.05)


def test_a_step_that_assigns_a_variable_outside_the_state_fails(tmp_path):
    result = run_script(
        """
        from keras_robust.backend.jax.trainer import _run_on_state

        tracked = keras.Variable(0.0)
        stray = keras.Variable(0.0)

        def step():
            tracked.assign(tracked + 1.0)
            stray.assign(1.0)
            return {}

        try:
            _run_on_state(([tracked],), ([np.float32(0.0)],), step)
        except RuntimeError as error:
            print(json.dumps({"error": str(error)}))
        """,
        tmp_path,
    )
    assert "not part of the model's state" in output_of(result)["error"]


def test_other_backends_are_refused_by_name(tmp_path):
    result = run_script("import keras_robust\n", tmp_path, backend="numpy")
    assert result.returncode != 0
    assert "Received: keras.backend.backend()='numpy'" in result.stderr


def test_fit_refuses_bad_inputs_before_the_first_step(tmp_path):
    result = run_script(
        """
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(32, 8, 8, 3)).astype("float32")
        y = rng.integers(0, 10, 32)
        errors = []
        for inputs, labels in [(x * 2, y), (x, y + 5)]:
            model = kr.AdversarialModel(
                keras.Sequential([
                    keras.Input((8, 8, 3)), keras.layers.Flatten(),
                    keras.layers.Dense(10),
                ]),
                attack=kr.attacks.PGD(epsilon=8 / 255, steps=2),
            )
            model.compile(optimizer="sgd", loss=kr.losses.SoftTargetCrossentropy())
            try:
                model.fit(inputs, labels, epochs=1, verbose=0)
            except ValueError as error:
                errors.append(str(error))
            errors.append(int(model.training_step.numpy()))
        print(json.dumps(errors))
        """,
        tmp_path,
    )
    range_error, range_steps, label_error, label_steps = output_of(result)
    assert "Argument `x` has values outside value_range=(0.0, 1.0)" in range_error
    assert "Argument `y` must hold class labels" in label_error
    assert range_steps == label_steps == 0


def test_mixed_float16_skips_a_step_whose_scaled_gradients_overflow(tmp_path):
    # LossScaleOptimizer chooses inside the step whether to apply it: its
    # stateless path on JAX.
    result = run_script(
        """
        keras.mixed_precision.set_dtype_policy("mixed_float16")
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(16, 8, 8, 3)).astype("float32")
        y = rng.integers(0, 10, 16)
        out = {}
        for scale in (2.0**40, 2.0**10):
            keras.utils.set_random_seed(0)
            model = kr.AdversarialModel(
                small_cnn(), attack=kr.attacks.PGD(epsilon=8 / 255, steps=2)
            )
            optimizer = keras.optimizers.LossScaleOptimizer(
                keras.optimizers.SGD(0.1), initial_scale=scale
            )
            model.compile(optimizer=optimizer, loss=kr.losses.SoftTargetCrossentropy())
            model.build((None, 8, 8, 3))
            before = [np.asarray(w).copy() for w in model.trainable_weights]
            model.fit(x, y, batch_size=16, epochs=1, verbose=0)
            out[str(scale)] = {
                "moved": max(
                    float(np.abs(np.asarray(w) - b).max())
                    for w, b in zip(model.trainable_weights, before)
                ),
                "scale": float(np.asarray(optimizer.dynamic_scale)),
                "steps": int(model.training_step.numpy()),
            }
        print(json.dumps(out))
        """,
        tmp_path,
        definitions=MODEL,
    )
    out = output_of(result)
    overflow, normal = out[str(2.0**40)], out[str(2.0**10)]
    # Overflow: the update is skipped and the scale halved.
    assert overflow["moved"] == 0.0 and overflow["scale"] == 2.0**39
    # Finite: the update is applied at the same scale.
    assert normal["moved"] > 0.0 and normal["scale"] == 2.0**10
    assert overflow["steps"] == normal["steps"] == 1


def _standalone_losses():
    """The losses that run outside `AdversarialModel`, built with defaults."""
    names = []
    for name in kr.losses.__all__:
        cls = getattr(kr.losses, name)
        is_loss = isinstance(cls, type) and issubclass(cls, keras.losses.Loss)
        if is_loss and name not in ("RobustLoss", "ADRLoss"):
            names.append(name)
    return names


def test_every_loss_equals_its_tensorflow_value(tmp_path):
    rng = np.random.default_rng(0)
    logits = (3 * rng.normal(size=(32, 10))).astype("float32")
    labels = rng.integers(0, 10, 32)
    weights = rng.uniform(size=32).astype("float32")
    np.savez(tmp_path / "inputs.npz", logits=logits, labels=labels, weights=weights)
    names = _standalone_losses()
    assert len(names) >= 10
    expected = {
        name: float(getattr(kr.losses, name)()(labels, logits, sample_weight=weights))
        for name in names
    }
    result = run_script(
        f"""
        data = np.load("inputs.npz")
        print(json.dumps({{
            name: float(getattr(kr.losses, name)()(
                data["labels"], data["logits"], sample_weight=data["weights"]
            ))
            for name in {names!r}
        }}))
        """,
        tmp_path,
    )
    got = output_of(result)
    for name in names:
        assert got[name] == pytest.approx(expected[name], rel=1e-5), name


def test_tf_data_pipelines_feed_training_on_jax(tmp_path):
    result = run_script(
        """
        import tensorflow as tf

        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(64, 8, 8, 3)).astype("uint8")
        y = rng.integers(0, 10, 64)
        data = kr.data.prepare_images(
            tf.data.Dataset.from_tensor_slices((x, y)), batch_size=16, training=True
        )
        model = kr.AdversarialModel(
            keras.Sequential([
                keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(10)
            ]),
            attack=kr.attacks.PGD(epsilon=8 / 255, steps=2),
        )
        model.compile(optimizer="sgd", loss=kr.losses.SoftTargetCrossentropy())
        history = model.fit(data, epochs=2, verbose=0)
        print(json.dumps({
            "steps": int(model.training_step.numpy()),
            "loss": history.history["loss"],
        }))
        """,
        tmp_path,
        tensorflow=True,
    )
    out = output_of(result)
    assert out["steps"] == 8
    assert all(np.isfinite(out["loss"]))


# Attacks with no random draw: both backends run the same arithmetic from the
# same point. 30 APGD steps pass its first checkpoints (step-size halving).
DETERMINISTIC_ATTACKS = {
    "pgd-25": "kr.attacks.PGD(epsilon=0.1, steps=25, random_start=False)",
    "apgd-ce": "kr.attacks.APGD(0.1, steps=30, random_start=False)",
    "apgd-dlr": "kr.attacks.APGD(0.1, steps=30, loss='dlr', random_start=False)",
    "apgd-t": "kr.attacks.APGD(0.1, steps=30, loss='dlr', targeted=True, "
    "num_target_classes=2, random_start=False)",
    "apgd-l2": "kr.attacks.APGD(0.5, norm='l2', steps=30, random_start=False)",
}
MLP = """
def mlp():
    return keras.Sequential([
        keras.Input((6, 6, 1)), keras.layers.Flatten(),
        keras.layers.Dense(24, activation="relu"), keras.layers.Dense(4),
    ])
"""


def test_attacks_without_randomness_equal_tensorflows(tmp_path):
    namespace = {"keras": keras}
    exec(textwrap.dedent(MLP), namespace)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 6, 6, 1)).astype("float32")
    y = np.argmax(x.reshape(64, -1)[:, :4], axis=-1)
    model = namespace["mlp"]()
    model.compile(
        keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(True)
    )
    model.fit(x, y, epochs=100, verbose=0)
    np.savez(tmp_path / "model.npz", x, y, *model.get_weights())

    result = run_script(
        f"""
        data = np.load("model.npz")
        model = mlp()
        model.set_weights([data[f"arr_{{i}}"] for i in range(2, 6)])
        attacks = {DETERMINISTIC_ATTACKS!r}
        np.savez("adversarial.npz", **{{
            name: eval(attack)(model, data["arr_0"], data["arr_1"])
            for name, attack in attacks.items()
        }})
        print(json.dumps({{"done": True}}))
        """,
        tmp_path,
        definitions=MLP,
    )
    assert output_of(result)["done"]
    on_jax = np.load(tmp_path / "adversarial.npz")

    def accuracy(images):
        return np.mean(np.argmax(model.predict(images, verbose=0), -1) == y)

    assert accuracy(x) >= 0.8
    for name, attack in DETERMINISTIC_ATTACKS.items():
        expected = eval(attack, {"kr": kr})(model, x, y)
        got = on_jax[name]
        assert accuracy(got) <= accuracy(x) - 0.3, name
        # Rounding differs between the backends' kernels: nearly every
        # example ends at the same point, and the robust accuracy agrees.
        distance = np.abs(got - expected).reshape(len(x), -1).max(axis=1)
        assert np.mean(distance <= 1e-5) >= 0.95, (name, np.sort(distance)[-5:])
        assert abs(accuracy(got) - accuracy(expected)) <= 2 / len(x), name


def test_importing_every_module_keeps_the_jax_backend(tmp_path):
    # Doctest and documentation tools import every module by its full name,
    # TensorFlow's backend modules included: that must not replace a name
    # the package re-exports from JAX's (`keras_robust.backend.random` was
    # once TensorFlow's module, and training with a random start then
    # failed inside the compiled step).
    result = run_script(
        """
        import importlib, pkgutil
        modules = [
            info.name
            for info in pkgutil.walk_packages(kr.__path__, "keras_robust.")
            if not info.name.endswith(".__main__")
        ]
        for name in modules:
            importlib.import_module(name)
        assert "keras_robust.backend.tensorflow.random" in modules
        names = kr.backend.common.NAMES
        origins = {
            name: getattr(getattr(kr.backend, name), "__module__", None)
            or getattr(kr.backend, name).__name__
            for name in names
        }
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(32, 8, 8, 3)).astype("float32")
        y = rng.integers(0, 10, 32)
        model = kr.AdversarialModel(
            small_cnn(), attack=kr.attacks.PGD(epsilon=8 / 255, steps=2)
        )
        model.compile(optimizer="sgd", loss=kr.losses.SoftTargetCrossentropy())
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        print(json.dumps({
            "origins": origins, "loss": history.history["loss"][-1],
        }))
        """,
        tmp_path,
        definitions=MODEL,
        tensorflow=True,
    )
    out = output_of(result)
    outside = {
        name: origin
        for name, origin in out["origins"].items()
        if not origin.startswith("keras_robust.backend.jax")
    }
    assert outside == {}
    assert np.isfinite(out["loss"])

"""Every Python code block of the README and the guides runs as written.

Each page's blocks run in order in one namespace, in a temporary folder,
on small data: the names a page assumes (`model`, `x_test`, `train_ds`,
...) come from the page's setup below, `fit()` runs at most two epochs of
two steps, and the tfds datasets are tfds's offline mock data. The TOML
example of the command-line page is checked as a config file. Every `>>>`
example in the package's docstrings runs as a doctest.
"""

import doctest
import functools
import importlib
import pkgutil
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
]
# Blocks that need an optional extra not in the test environment.
OPTIONAL = {"ai_edge_litert"}


def blocks(page, language="python"):
    text = (ROOT / page).read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def _digits(n_test=64):
    (x_train, y_train), (x_test, y_test) = kr.data.load_digits()
    return x_train, y_train, x_test[:n_test], y_test[:n_test]


def _mlp(input_shape=(8, 8, 1)):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def _trained_adversarial_model(x, y):
    model = kr.AdversarialModel(_mlp(), attack=kr.attacks.PGD(epsilon=0.1, steps=3))
    model.compile("adam", kr.losses.ADRLoss(), metrics=["accuracy"])
    history = model.fit(
        x, y, epochs=1, batch_size=64, callbacks=[kr.callbacks.EMATeacher(0.9)]
    )
    return model, history


def _cifar_like(n=16, batch=8):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def setup(page):
    """The names a page's blocks use without defining them."""
    x_train, y_train, x_test, y_test = _digits()
    names = {"keras": keras, "kr": kr, "np": np}
    if page == "docs/adr.md":
        names.update(train_ds=_cifar_like(), test_ds=_cifar_like(8))
    elif page == "docs/deployment.md":
        model, _ = _trained_adversarial_model(x_train, y_train)
        names.update(model=model, x_test=x_test, y_test=y_test, x=x_test[:4])
    elif page == "docs/evaluation.md":
        model, history = _trained_adversarial_model(x_train, y_train)
        names.update(
            model=model.base_model,
            history=history,
            x_test=x_test[:32],
            y_test=y_test[:32],
        )
    elif page == "docs/training.md":
        ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64)
        names.update(base=_mlp(), ds=ds, x_test=x_test, y_test=y_test)
    elif page == "docs/tuning.md":
        best, _ = _trained_adversarial_model(x_train, y_train)
        last, _ = _trained_adversarial_model(x_train, y_train)
        names.update(
            x_train=x_train,
            y_train=y_train,
            x_val=x_test,
            y_val=y_test,
            best=best.base_model,
            last=last.base_model,
        )
    return names


@pytest.fixture
def small_fit(monkeypatch):
    original = keras.Model.fit

    @functools.wraps(original)  # the same signature, for AdversarialModel.fit
    def fit(self, *args, epochs=1, steps_per_epoch=None, **kwargs):
        kwargs.setdefault("verbose", 0)
        kwargs["validation_steps"] = 1
        return original(
            self,
            *args,
            epochs=min(epochs, 2),
            steps_per_epoch=min(steps_per_epoch or 2, 2),
            **kwargs,
        )

    monkeypatch.setattr(keras.Model, "fit", fit)


# Pages whose blocks take more than about 5 s (searches, attack ensembles,
# ResNet-18) run with the slow tests.
FAST = {"docs/noisy_labels.md", "docs/training.md", "docs/distributed.md"}
# Pages and modules about TensorFlow-only features (docs/backends.md).
TENSORFLOW_ONLY = {
    "docs/distributed.md": "tf.distribute",
    "keras_robust.layers.batch_normalization": "TensorFlow's fused batch-norm op",
}


def _marks(name, slow=False):
    marks = [pytest.mark.slow] if slow else []
    if name in TENSORFLOW_ONLY:
        marks.append(pytest.mark.tensorflow_only(reason=TENSORFLOW_ONLY[name]))
    return pytest.param(name, marks=marks)


@pytest.mark.parametrize(
    "page",
    [_marks(p, slow=p not in FAST) for p in PAGES if blocks(p)],
)
def test_code_blocks_run(page, tmp_path, monkeypatch, small_fit):
    import tensorflow_datasets as tfds

    monkeypatch.chdir(tmp_path)
    namespace = setup(page)
    with tfds.testing.mock_data(num_examples=16):
        for number, code in enumerate(blocks(page)):
            try:
                exec(compile(code, f"{page}[{number}]", "exec"), namespace)
            except ModuleNotFoundError as error:
                if error.name not in OPTIONAL:
                    raise


def test_cli_page_config_example_is_a_valid_config(tmp_path):
    from keras_robust import cli

    (toml,) = blocks("docs/cli.md", "toml")
    config = tmp_path / "cifar.toml"
    config.write_text(toml)
    args = cli.parse_args(["train", "--config", str(config)])
    assert args.dataset == "cifar10" and args.epochs == 110
    assert args.epsilon == pytest.approx(8 / 255)


def _modules():
    names = []
    for info in pkgutil.walk_packages(kr.__path__, "keras_robust."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", [_marks(name) for name in _modules()])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name, globs={}):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} failing examples in {name}"

"""Export across processes: killed exports, and `saved_model_cli` (slow)."""

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests.export.helpers import adr_model, leftovers

pytestmark = pytest.mark.slow

EXPORT_FOREVER = r"""
import sys

import keras

import keras_robust as kr

target, name = sys.argv[1:3]
keras.utils.set_random_seed(0)
base = keras.Sequential(
    [
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(10),
    ]
)
model = kr.AdversarialModel(base, attack=kr.attacks.PGD(0.1), name=name)
print("ready", flush=True)
while True:
    model.export(target, overwrite=True)
"""


def _check_complete(target, names, context):
    """The artifact at `target` is whole: files, card, and it serves."""
    for part in ("saved_model.pb", "variables/variables.index", "assets"):
        assert (target / part).exists(), f"{part} missing ({context})"
    card = kr.export.read_card(target)
    assert card["model"]["name"] in names, context
    loaded = tf.saved_model.load(str(target))
    outputs = loaded.signatures["serving_default"](
        images=tf.zeros((2, 8, 8, 1), tf.float32)
    )
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    return card["model"]["name"]


def test_killed_export_leaves_no_artifact_or_a_complete_one(tmp_path):
    target = tmp_path / "model"
    rng = random.Random()
    delays = [rng.uniform(0.0, 1.5) for _ in range(4)]
    written = []
    for round_, delay in enumerate(delays):
        name = f"round{round_}"
        child = subprocess.Popen(
            [sys.executable, "-c", EXPORT_FOREVER, str(target), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stdout.readline().strip() == "ready"
            try:
                child.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
        finally:
            child.kill()
            child.wait()
        context = f"round {round_}, killed {delay:.3f} s after the start"
        if target.exists():
            written.append(_check_complete(target, {*written, name}, context))
        else:
            # Nothing there: only before the first export completed.
            assert not written, context
    assert all(".tmp-" in n or ".old-" in n for n in leftovers(tmp_path))
    # The next export removes the leftovers of the killed processes.
    adr_model().export(target, overwrite=True)
    assert leftovers(tmp_path) == []
    assert kr.export.read_card(target)["weights"] == "teacher"


def test_saved_model_cli_shows_and_runs_the_signature(tmp_path):
    model = adr_model()
    path = model.export(tmp_path / "model")
    x = np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    cli = str(Path(sys.executable).parent / "saved_model_cli")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    common = ["--dir", path, "--tag_set", "serve", "--signature_def"]
    show = subprocess.run(
        [cli, "show", *common, "serving_default"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert show.returncode == 0, show.stderr[-3000:]
    assert "inputs['images']" in show.stdout
    assert "outputs['logits']" in show.stdout
    assert "outputs['probabilities']" in show.stdout
    assert show.stdout.count("DT_FLOAT") == 3
    assert "shape: (-1, 8, 8, 1)" in show.stdout
    run = subprocess.run(
        [
            cli,
            "run",
            *common,
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'x.npy'}",
            "--outdir",
            str(tmp_path / "outputs"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    logits = np.load(tmp_path / "outputs" / "logits.npy")
    np.testing.assert_allclose(logits, model.teacher(x), atol=1e-5)
    probabilities = np.load(tmp_path / "outputs" / "probabilities.npy")
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)

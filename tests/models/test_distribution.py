"""AdversarialModel under tf.distribute: same result as one device.

Each configuration runs `distributed_run.py` in its own process (logical
devices and the collective runtime are fixed when TensorFlow starts), on the
same global batches, and compares the trained weights and logs. Slow (about
a minute): run with `python -m pytest -m slow`.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("distributed_run.py")
TIMEOUT = 240


def _run(mode, output, env=None):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), mode, str(output)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait(processes):
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, out in zip(processes, outputs, strict=True):
        assert p.returncode == 0, out.decode()[-3000:]


def _load(path):
    result = np.load(path)
    weights = [result[f"w{i}"] for i in range(4)]
    return int(result["replicas"]), json.loads(str(result["history"])), weights


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    output = tmp_path_factory.mktemp("single") / "single.npz"
    _wait([_run("single", output)])
    return _load(output)


def _assert_same_training(reference, other):
    _, history, weights = reference
    _, other_history, other_weights = other
    assert other_history.keys() == history.keys()
    assert "val_robust_accuracy" in history
    for key in history:
        np.testing.assert_allclose(other_history[key], history[key], atol=1e-5)
    for w, w_other in zip(weights, other_weights, strict=True):
        np.testing.assert_allclose(w_other, w, atol=1e-5)
    assert not np.allclose(weights[0], 0)


@pytest.mark.slow
def test_mirrored_strategy_on_two_devices_equals_one_device(single_device, tmp_path):
    output = tmp_path / "mirrored.npz"
    _wait([_run("mirrored", output)])
    replicas, *_ = mirrored = _load(output)
    assert replicas == 2
    _assert_same_training(single_device, mirrored)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_strategy_with_two_workers_equals_one_device(
    single_device, tmp_path
):
    cluster = {"worker": [f"localhost:{_free_port()}" for _ in range(2)]}
    processes = [
        _run(
            "multiworker",
            tmp_path / f"worker{i}.npz",
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    _wait(processes)
    workers = [_load(tmp_path / f"worker{i}.npz") for i in range(2)]
    assert [w[0] for w in workers] == [2, 2]
    for worker in workers:
        _assert_same_training(single_device, worker)

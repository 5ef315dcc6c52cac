"""A distributed HyperADR search: a chief and two workers on localhost."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

kt = pytest.importorskip("keras_tuner")
from keras_robust.tuning import HyperADR, robust_objective  # noqa: E402

SCRIPT = Path(__file__).with_name("distributed_search.py")
TIMEOUT = 300


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_share_one_search(tmp_path):
    port = _free_port()
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = {
            **os.environ,
            "KERASTUNER_TUNER_ID": tuner_id,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(port),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        processes[tuner_id] = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    outputs = {}
    try:
        for tuner_id, process in processes.items():
            outputs[tuner_id] = process.communicate(timeout=TIMEOUT)[0]
    finally:
        for process in processes.values():
            process.kill()
    for tuner_id, process in processes.items():
        assert process.returncode == 0, f"{tuner_id}:\n{outputs[tuner_id][-3000:]}"

    # Both trials ran, in the workers only, and the chief's oracle kept them.
    ran = sorted(p.name.split("-")[1] for p in tmp_path.glob("ran-*"))
    assert ran and set(ran) <= {"tuner0", "tuner1"}
    runs = sum(len(p.read_text().split()) for p in tmp_path.glob("ran-*"))
    assert runs == 2

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import distributed_search
    finally:
        sys.path.remove(str(SCRIPT.parent))
    tuner = kt.RandomSearch(
        HyperADR(
            distributed_search.base_model,
            attack=None,
        ),
        objective=robust_objective(),
        max_trials=2,
        directory=str(tmp_path),
        project_name="distributed",
        overwrite=False,
    )
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" for t in trials)
    for trial in trials:
        value = trial.metrics.get_best_value("val_robust_accuracy")
        assert 0.0 <= value <= 1.0
    best = tuner.get_best_models(1)[0]
    assert best.teacher is not None

"""Export: served outputs, the robustness card, layouts, atomic writes, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust import export as kr_export
from tests.export.helpers import INPUT_SHAPE, adr_model, base, leftovers

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def model():
    return adr_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).uniform(0, 1, (7, *INPUT_SHAPE)).astype("float32")


def _serve(path, x):
    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](images=tf.constant(x))
    return {name: value.numpy() for name, value in outputs.items()}


def _report():
    return kr.evaluation.RobustnessReport(
        clean_accuracy=0.9,
        robust_accuracy=0.6,
        per_attack={"apgd-ce": 0.65, "apgd-t": 0.6},
        num_examples=100,
        failed_checks=[],
        seconds=1.0,
        settings={"epsilon": 0.1, "norm": "linf", "value_range": [0.0, 1.0]},
        ece=0.05,
    )


def test_teacher_and_student_exports_serve_their_networks(model, x, tmp_path):
    teacher_path = model.export(tmp_path / "teacher")
    student_path = model.export(tmp_path / "student", weights="student")
    assert teacher_path == str(tmp_path / "teacher")

    signature = tf.saved_model.load(teacher_path).signatures["serving_default"]
    spec = signature.structured_input_signature[1]
    assert list(spec) == ["images"]
    assert spec["images"].dtype == tf.float32
    assert spec["images"].shape.as_list() == [None, *INPUT_SHAPE]
    assert set(signature.structured_outputs) == {"logits", "probabilities"}

    teacher = _serve(teacher_path, x)
    student = _serve(student_path, x)
    np.testing.assert_allclose(teacher["logits"], model.teacher(x), atol=1e-5)
    np.testing.assert_allclose(student["logits"], model.base_model(x), atol=1e-5)
    for outputs in (teacher, student):
        np.testing.assert_allclose(
            outputs["probabilities"],
            tf.nn.softmax(outputs["logits"]).numpy(),
            atol=1e-6,
        )
    assert not np.allclose(teacher["logits"], student["logits"], atol=1e-3)
    # The batch dimension is dynamic.
    assert _serve(teacher_path, x[:1])["logits"].shape == (1, 10)
    assert kr.export.read_card(teacher_path)["weights"] == "teacher"
    assert kr.export.read_card(student_path)["weights"] == "student"


def test_card_describes_training_and_round_trips(model, tmp_path):
    path = model.export(tmp_path / "model", report=_report())
    card_file = Path(path) / "assets" / "keras_robust.json"
    assert card_file.is_file()
    card = kr.export.read_card(path)
    assert card == json.loads(card_file.read_text())
    assert card["versions"] == {
        "keras_robust": kr.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    assert card["weights"] == "teacher"
    assert card["attack"] == {"class": "PGD", **model.attack.get_config()}
    assert card["attack"]["epsilon"] == 0.1
    assert card["attack"]["norm"] == "linf"
    assert card["value_range"] == [0.0, 1.0]
    assert card["objective"]["class"] == "Madry"
    assert card["teacher"]["class"] == "EMA"
    assert card["teacher"]["decay"] == pytest.approx(0.9)
    assert card["adr"]["temperature"] == {
        "class": "CosineAnnealing",
        **model.loss.temperature.get_config(),
    }
    assert card["adr"]["interpolation"]["total_steps"] == 50
    assert card["robustness"] == {
        "clean_accuracy": 0.9,
        "robust_accuracy": 0.6,
        "per_attack": {"apgd-ce": 0.65, "apgd-t": 0.6},
        "epsilon": 0.1,
        "norm": "linf",
        "num_examples": 100,
        "failed_checks": [],
        "ece": 0.05,
    }
    assert card["signature"]["outputs"]["logits"] == {
        "shape": [None, 10],
        "dtype": "float32",
    }


def test_any_keras_model_exports_as_the_student(x, tmp_path):
    plain = base(seed=3)
    path = kr.export.export_model(plain, tmp_path / "plain")
    np.testing.assert_allclose(_serve(path, x)["logits"], plain(x), atol=1e-5)
    card = kr.export.read_card(path)
    assert card["weights"] == "student"
    assert card["attack"] is None and card["adr"] is None
    assert card["robustness"] is None
    with pytest.raises(ValueError, match="Received: weights='teacher'"):
        kr.export.export_model(plain, tmp_path / "teacher", weights="teacher")
    assert not (tmp_path / "teacher").exists()


def test_mixed_precision_model_exports_a_float32_signature(
    x, tmp_path, restore_dtype_policy
):
    model = kr.AdversarialModel(
        base(seed=1, dtype="mixed_float16"), attack=kr.attacks.PGD(0.1)
    )
    assert model.base_model(x).dtype == "float16"
    path = model.export(tmp_path / "mixed")
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert {spec.dtype for spec in signature.structured_outputs.values()} == {
        tf.float32
    }
    outputs = _serve(path, x)
    assert outputs["logits"].dtype == np.float32
    np.testing.assert_allclose(
        outputs["logits"], np.float32(model.base_model(x)), atol=1e-5
    )
    assert keras.config.dtype_policy().name == "float32"


def test_serving_layout_writes_version_folders(model, x, tmp_path):
    base = tmp_path / "robust"
    first = model.export(base, serving_layout=True, weights="student")
    assert first == str(base / "1")
    third = model.export(base, version=3)
    assert third == str(base / "3")
    assert sorted(os.listdir(base)) == ["1", "3"]
    assert kr.export.read_card(base)["weights"] == "teacher"  # the newest
    assert kr.export.read_card(base / "1")["weights"] == "student"
    np.testing.assert_allclose(_serve(third, x)["logits"], model.teacher(x), atol=1e-5)


def test_existing_target_is_refused_then_replaced_with_overwrite(model, tmp_path):
    target = tmp_path / "model"
    model.export(target, weights="student")
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    with pytest.raises(ValueError, match=r"Received: filepath=.*model', overwrite"):
        model.export(target)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert kr.export.read_card(target)["weights"] == "student"

    model.export(target, overwrite=True)
    assert kr.export.read_card(target)["weights"] == "teacher"
    assert leftovers(tmp_path) == []


def _unbuilt():
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)])


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        ("adr", {"weights": "ema"}, "Argument `weights`.*Received: weights='ema'"),
        ("adr", {"format": "h5"}, "Argument `format`.*Received: format='h5'"),
        ("plain", {"weights": "teacher"}, "Received: weights='teacher'"),
        ("unbuilt", {}, "Argument `model` must be built.*Received: model="),
        ("unbuilt_adversarial", {}, "must be built.*Received: model="),
        ("adr", {"version": -1}, "Argument `version`.*Received: version=-1"),
        ("adr", {"overwrite": "yes"}, "Received: overwrite='yes'"),
        ("adr", {"report": {"a": 1}}, r"Argument `report`.*Received: report=\{'a'"),
        (
            "adr",
            {"format": "onnx", "serving_layout": True},
            "Argument `serving_layout`.*Received: serving_layout=True",
        ),
        ("adr", {"opset_version": 13}, "Received: opset_version=13"),
        ("not_a_model", {}, "Argument `model`.*Received: model='model'"),
    ],
)
def test_bad_input_raises_before_anything_is_written(
    model, tmp_path, make, kwargs, message
):
    subject = {
        "adr": model,
        "plain": base(),
        "unbuilt": _unbuilt(),
        "unbuilt_adversarial": kr.AdversarialModel(_unbuilt()),
        "not_a_model": "model",
    }[make]
    with pytest.raises(ValueError, match=message):
        kr.export.export_model(subject, tmp_path / "out" / "model", **kwargs)
    assert os.listdir(tmp_path) == []


def test_failed_export_keeps_the_previous_artifact(model, tmp_path, monkeypatch):
    target = tmp_path / "model"
    model.export(target, weights="student")

    def fail(card, path):
        raise OSError("disk full")

    monkeypatch.setattr(kr_export, "_write_card", fail)
    with pytest.raises(OSError, match="disk full"):
        model.export(target, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        model.export(tmp_path / "new")
    monkeypatch.undo()
    assert kr.export.read_card(target)["weights"] == "student"
    assert not (tmp_path / "new").exists()
    assert leftovers(tmp_path) == []


def test_leftovers_of_dead_processes_are_removed(model, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".model.tmp-{dead.pid}-0123abcd"
    stale_old = tmp_path / f".model.old-{dead.pid}-4567cdef"
    running = tmp_path / f".model.tmp-{os.getppid()}-89abcdef"
    other = tmp_path / f".other.tmp-{dead.pid}-0123abcd"
    for folder in (stale, stale_old, running, other):
        (folder / "variables").mkdir(parents=True)
    model.export(tmp_path / "model")
    assert not stale.exists() and not stale_old.exists()
    assert running.exists() and other.exists()


def test_read_card_rejects_folders_without_a_card(tmp_path):
    with pytest.raises(ValueError, match="Argument `path`.*Received: path="):
        kr.export.read_card(tmp_path)


def test_loads_and_serves_without_keras_robust(model, x, tmp_path):
    path = model.export(tmp_path / "model", report=_report())
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(HERE / "serve_without_keras_robust.py"),
            path,
            str(tmp_path / "x.npy"),
            str(tmp_path / "out.npz"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(served["logits"], model.teacher(x), atol=1e-5)
    np.testing.assert_allclose(
        served["probabilities"], tf.nn.softmax(model.teacher(x)).numpy(), atol=1e-5
    )
    assert json.loads(str(served["card"])) == kr.export.read_card(path)


@pytest.mark.tensorflow_only(reason="ONNX export through tf2onnx")
def test_onnx_export_matches_in_memory_networks(model, x, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    for weights, network in (("teacher", model.teacher), ("student", model.base_model)):
        path = model.export(
            tmp_path / f"{weights}.onnx", format="onnx", weights=weights
        )
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["images"]
        names = [o.name for o in session.get_outputs()]
        assert sorted(names) == ["logits", "probabilities"]
        outputs = dict(zip(names, session.run(None, {"images": x}), strict=True))
        np.testing.assert_allclose(outputs["logits"], network(x), atol=1e-5)
        np.testing.assert_allclose(
            outputs["probabilities"], tf.nn.softmax(network(x)).numpy(), atol=1e-5
        )
        card = kr.export.read_card(path)
        assert card["weights"] == weights and card["format"] == "onnx"
    with pytest.raises(ValueError, match="Received: filepath="):
        model.export(tmp_path / "teacher.onnx", format="onnx")
    assert leftovers(tmp_path) == []


def test_to_tflite_matches_the_saved_model(model, x, tmp_path):
    saved = model.export(tmp_path / "robust", serving_layout=True)
    path = kr.export.to_tflite(tmp_path / "robust", tmp_path / "robust.tflite")
    from_model = kr.export.to_tflite(
        model, tmp_path / "student.tflite", weights="student", sample=x
    )
    for file, network in ((path, model.teacher), (from_model, model.base_model)):
        interpreter = kr_export._litert_interpreter(Path(file).read_bytes())
        runner = interpreter.get_signature_runner("serving_default")
        outputs = runner(images=x)
        np.testing.assert_allclose(outputs["logits"], network(x), atol=1e-5)
    assert path == str(tmp_path / "robust.tflite")
    assert kr.export.read_card(saved)["weights"] == "teacher"
    with pytest.raises(ValueError, match="Received: filepath="):
        kr.export.to_tflite(saved, path)
    with pytest.raises(ValueError, match="Argument `sample`"):
        kr.export.to_tflite(saved, tmp_path / "x.tflite", sample=np.zeros((2, 3)))
    assert not (tmp_path / "x.tflite").exists()


def test_to_tflite_refuses_a_conversion_that_changes_the_outputs(
    model, tmp_path, monkeypatch
):
    saved = model.export(tmp_path / "model")
    original = kr_export._litert_interpreter

    class Shifted:
        def __init__(self, content):
            self.runner = original(content).get_signature_runner("serving_default")

        def get_signature_runner(self, name):
            def run(**inputs):
                outputs = self.runner(**inputs)
                return {**outputs, "logits": outputs["logits"] + 1e-3}

            return run

    monkeypatch.setattr(kr_export, "_litert_interpreter", Shifted)
    with pytest.raises(RuntimeError, match="`logits` differ.*atol=0.0001"):
        kr.export.to_tflite(saved, tmp_path / "model.tflite")
    assert not (tmp_path / "model.tflite").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_keras_file_with_attack_adr_and_teacher_loads_in_safe_mode(model, x, tmp_path):
    path = tmp_path / "adr.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, kr.AdversarialModel)
    assert restored.attack.get_config() == model.attack.get_config()
    assert restored.loss.get_config() == model.loss.get_config()
    np.testing.assert_array_equal(restored.teacher(x), model.teacher(x))
    card = kr.export.read_card(restored.export(tmp_path / "restored"))
    expected = kr.export.read_card(model.export(tmp_path / "original"))
    assert card == expected

"""The `keras-robust` command: options, config files, output folders, and
train → evaluate → export end to end on tiny settings."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust import cli

TINY = [
    "--epochs",
    "2",
    "--attack-steps",
    "1",
    "--eval-samples",
    "60",
    "--attacks",
    "apgd-ce",
    "--no-verbose",
]


def fails(argv, capsys):
    """Runs the console entry point; returns the one error line."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("keras-robust")
    return err


@pytest.mark.parametrize("command", ["train", "evaluate", "tune", "export"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"keras-robust {command}" in text and "--config" in text


def test_no_command_is_a_usage_error(capsys):
    assert "a command is required" in fails([], capsys)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("epoch = 3\n", "unknown key 'epoch'"),
        ('epochs = "x"\n', "key 'epochs' must be an integer"),
        ("epsilon = true\n", "key 'epsilon' must be a number"),
        ('method = "fgsm"\n', "key 'method' must be one of madry"),
        ("[train]\nbatch_size = 1.5\n", "key 'batch_size' must be an integer"),
        ("epochs = \n", "not valid TOML"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, content, expected):
    config = tmp_path / "run.toml"
    config.write_text(content)
    err = fails(["train", "--config", str(config)], capsys)
    assert expected in err and str(config) in err


def test_missing_config_file(tmp_path, capsys):
    err = fails(["train", "--config", str(tmp_path / "none.toml")], capsys)
    assert "config file not found" in err and "none.toml" in err


def test_bad_flag_values_are_one_line_errors(capsys):
    assert "--epochs must be >= 1. Received: 0" in fails(
        ["train", "--epochs", "0"], capsys
    )
    assert "8/2x" in fails(["train", "--epsilon", "8/2x"], capsys)
    assert "epsilon=-1.0" in fails(["train", "--epsilon", "-1"], capsys)
    assert "--label-noise" in fails(["train", "--label-noise", "2"], capsys)
    assert "--label-noise" in fails(["tune", "--label-noise", "2"], capsys)


def test_config_tables_relative_paths_and_flags_win(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    config = folder / "run.toml"
    config.write_text(
        'output = "runs/a"\nepsilon = "8/255"\n'
        "[train]\nepochs = 3\nbatch-size = 16\n"
        '[evaluate]\noutputs = "probabilities"\n'
    )
    args = cli.parse_args(["train", "--config", str(config), "--epochs", "2"])
    assert args.output == str(folder / "runs" / "a")
    assert args.epsilon == pytest.approx(8 / 255)
    assert args.epochs == 2  # the flag wins
    assert args.batch_size == 16
    assert not hasattr(args, "outputs")
    assert cli.parse_args(["train", "--epsilon", "8/255"]).epsilon == 8 / 255


def _args(tmp_path, *extra):
    return cli.parse_args(["train", "--output", str(tmp_path / "run"), *extra])


def test_output_folder_of_another_run_is_refused(tmp_path):
    output, resuming = cli.prepare_output(_args(tmp_path), "x", cli.TRAIN_OUTPUTS)
    assert not resuming and (output / "run.json").exists()
    _, resuming = cli.prepare_output(_args(tmp_path), "x", cli.TRAIN_OUTPUTS)
    assert resuming  # same settings: the same run, resumed
    with pytest.raises(cli.UsageError, match="another run.*epochs"):
        cli.prepare_output(_args(tmp_path, "--epochs", "3"), "x", cli.TRAIN_OUTPUTS)
    # --overwrite replaces the run's own files and keeps everything else.
    (output / "history.csv").write_text("old")
    (output / "notes.txt").write_text("mine")
    args = _args(tmp_path, "--epochs", "3", "--overwrite")
    cli.prepare_output(args, "x", cli.TRAIN_OUTPUTS)
    assert not (output / "history.csv").exists()
    assert (output / "notes.txt").read_text() == "mine"
    record = json.loads((output / "run.json").read_text())
    assert record["settings"]["epochs"] == 3


def test_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "data.csv").write_text("1,2")
    with pytest.raises(cli.UsageError, match="not empty"):
        cli.prepare_output(_args(tmp_path), "x", cli.TRAIN_OUTPUTS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output = tmp_path_factory.mktemp("cli") / "train"
    summary = cli.run(["train", *TINY, "--output", str(output)])
    return output, summary


def test_train_writes_the_run(trained):
    output, summary = trained
    report = json.loads((output / "report.json").read_text())
    assert {"clean_accuracy", "robust_accuracy", "per_attack", "ece"} <= set(report)
    assert report["weights"] == "teacher"  # ADR: the EMA teacher is evaluated
    assert report["num_examples"] == 60
    assert 0.0 <= report["robust_accuracy"] <= report["clean_accuracy"] <= 1.0
    assert summary["robust_accuracy"] == report["robust_accuracy"]
    history = json.loads((output / "history.json").read_text())
    assert len(history["val_robust_accuracy"]) == 2
    assert {"temperature", "interpolation"} <= set(history)
    for name in ("training_curves", "robustness_curve", "reliability_diagram"):
        assert (output / "plots" / f"{name}.png").stat().st_size > 0
    assert any((output / "logs").rglob("*tfevents*"))
    card = kr.export.read_card(str(output / "export"))
    assert card["robustness"]["robust_accuracy"] == pytest.approx(
        report["robust_accuracy"]
    )
    assert card["weights"] == "teacher"
    record = json.loads((output / "run.json").read_text())
    assert record["complete"] is True


def test_rerunning_a_complete_run_trains_nothing(trained, capsys):
    output, summary = trained
    before = (output / "model.keras").stat().st_mtime_ns
    again = cli.run(["train", *TINY, "--output", str(output)])
    assert again["robust_accuracy"] == summary["robust_accuracy"]
    assert (output / "model.keras").stat().st_mtime_ns == before
    assert "complete run" in capsys.readouterr().out


@pytest.mark.tensorflow_only(reason="SavedModel export")
def test_evaluate_the_exported_saved_model_equals_the_report(trained, tmp_path):
    output, summary = trained
    result = cli.run(
        [
            "evaluate",
            str(output / "export"),
            "--eval-samples",
            "60",
            "--attacks",
            "apgd-ce",
            "--no-verbose",
            "--no-plots",
            "--output",
            str(tmp_path / "eval"),
        ]
    )
    # The same weights behind a SavedModel signature: same clean accuracy,
    # and APGD-CE with the same seed breaks the same examples (one example
    # of slack for float round-off in the attack's path).
    assert result["clean_accuracy"] == summary["clean_accuracy"]
    assert abs(result["robust_accuracy"] - summary["robust_accuracy"]) <= 1 / 60
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["outputs"] == "logits"
    # epsilon came from the model's robustness card
    assert report["settings"]["epsilon"] == pytest.approx(0.1)


def test_evaluate_a_keras_file_student_weights(trained, tmp_path):
    output, _ = trained
    model = keras.saving.load_model(output / "model.keras")
    (_, _), (x, y) = kr.data.load_digits()
    expected = np.mean(model.base_model.predict(x[:60], verbose=0).argmax(-1) == y[:60])
    result = cli.run(
        [
            "evaluate",
            str(output / "model.keras"),
            "--weights",
            "student",
            "--eval-samples",
            "60",
            "--attacks",
            "apgd-ce",
            "--no-verbose",
            "--no-plots",
            "--output",
            str(tmp_path / "eval"),
        ]
    )
    assert result["clean_accuracy"] == pytest.approx(expected)


def test_export_command_copies_the_report_into_the_card(trained, tmp_path):
    output, summary = trained
    target = tmp_path / "served"
    cli.run(
        [
            "export",
            str(output / "model.keras"),
            "--output",
            str(target),
            "--weights",
            "student",
            "--serving-layout",
        ]
    )
    card = kr.export.read_card(str(target / "1"))
    assert card["weights"] == "student"
    assert card["robustness"]["clean_accuracy"] == pytest.approx(
        summary["clean_accuracy"]
    )


@pytest.mark.tensorflow_only(reason="SavedModel export")
def test_evaluate_a_foreign_saved_model_of_probabilities_in_0_255(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x, y) = kr.data.load_digits()
    network = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    network.compile("adam", "sparse_categorical_crossentropy")
    network.fit(x_train, y_train, epochs=3, verbose=0)

    class Raw(tf.Module):
        """Takes raw pixels in [0, 255]; returns probabilities."""

        def __init__(self):
            super().__init__()
            self.network = network

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
        def serve(self, pixels):
            return {"scores": self.network(pixels / 255.0)}

    module = Raw()
    path = tmp_path / "foreign"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    expected = float(np.mean(network.predict(x, verbose=0).argmax(-1) == y))
    result = cli.run(
        [
            "evaluate",
            str(path),
            "--outputs",
            "probabilities",
            "--value-range",
            "0,255",
            "--epsilon",
            "25.5",
            "--attacks",
            "apgd-ce",
            "--no-verbose",
            "--output",
            str(tmp_path / "eval"),
        ]
    )
    assert result["clean_accuracy"] == pytest.approx(expected)
    assert result["robust_accuracy"] < result["clean_accuracy"]
    names = sorted(Path(p).name for p in result["plots"])
    assert names == ["reliability_diagram.png", "robustness_curve.png"]


def test_evaluate_bad_models_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even here
    assert "MODEL not found" in fails(["evaluate", str(tmp_path / "no")], capsys)
    (tmp_path / "empty").mkdir()
    assert "saved_model.pb" in fails(["evaluate", str(tmp_path / "empty")], capsys)
    assert "needs MODEL" in fails(["evaluate"], capsys)
    (tmp_path / "weights.h5").write_text("")
    assert "must be a .keras file" in fails(["evaluate", "weights.h5"], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "weights.h5"]


def test_python_dash_m_runs_the_command():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "keras_robust", "--version"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        timeout=120,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"keras-robust {kr.__version__}"

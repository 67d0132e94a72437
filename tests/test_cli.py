"""The command line, run as a user runs it: a subprocess with CASEWISE_HOME set."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.data import PROJECT_ROOT, synthetic_rows, write_csv


def test_predict_json_contract(home):
    out = run_cli(home, "predict", "great relief, it works", "--json").stdout.splitlines()
    (line,) = out
    answer = json.loads(line)
    assert set(answer) >= {"label", "probabilities", "model_id", "truncated"}
    assert set(answer["probabilities"]) == {"negative", "neutral", "positive"}
    assert answer["truncated"] is False


def test_predict_a_file_prints_one_line_per_case(home, tmp_path):
    cases = write_csv(tmp_path / "cases.csv", [{"id": "1", "text": "awful rash"},
                                               {"id": "2", "text": ""},
                                               {"id": "3", "text": "okay " * 100}])
    result = run_cli(home, "predict", "--file", str(cases), "--json")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 2
    # Longer than the window, read whole in windows (only past the read limit is cut).
    assert answers[1]["truncated"] is False and answers[1]["windows"] > 1
    assert "skipped 1 empty text(s) (rows [2])" in result.stderr


def test_predict_human_readable(home):
    out = run_cli(home, "predict", "awful terrible rash").stdout
    assert out.split()[0] in {"negative", "neutral", "positive"}


def test_models_list_and_activate(home):
    (model,) = json.loads(run_cli(home, "models", "--json").stdout)
    assert set(model) >= {"id", "path", "active", "created"} and model["active"] is True
    bad = run_cli(home, "models", "--activate", "no-such-model", check=False)
    assert bad.returncode == 2 and "No model 'no-such-model'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_predict_without_a_model_says_how_to_get_one(tmp_path):
    result = run_cli(tmp_path / "empty", "predict", "hello", check=False)
    assert result.returncode == 2 and "python main.py train" in result.stderr


def test_tampered_model_is_refused_by_the_cli(home):
    (model,) = json.loads(run_cli(home, "models", "--json").stdout)
    with open(os.path.join(model["path"], "config.json"), "a") as handle:
        handle.write(" ")
    result = run_cli(home, "predict", "hello", check=False)
    assert result.returncode == 2 and "SHA-256" in result.stderr


def test_train_from_a_user_file_with_misspelled_column(tmp_path, tiny_base_dir):
    data = write_csv(tmp_path / "mine.csv", synthetic_rows())
    result = run_cli(tmp_path / "h", "train", "--data", str(data), "--text-col", "txt",
                     "--label-col", "label", "--base-model", str(tiny_base_dir), check=False)
    assert result.returncode == 2
    assert "'txt' not found" in result.stderr and "'text', 'label'" in result.stderr
    assert not (tmp_path / "h" / "models").exists() or not any((tmp_path / "h" / "models")
                                                               .iterdir())


def test_train_from_a_user_file(tmp_path, trained_home):
    # The base is the tiny model already trained on this task: two epochs at the default
    # learning rate leave the tiny random BERT at chance, and such a model is not activated
    # (tests/test_hostile_files.py).
    from models.registry import ModelRegistry

    base = ModelRegistry(trained_home).active_path()
    data = write_csv(tmp_path / "mine.tsv", synthetic_rows(), delimiter="\t")
    result = run_cli(tmp_path / "h", "train", "--data", str(data), "--epochs", "2",
                     "--max-length", "32", "--base-model", str(base), "--recipe", "fine-tune",
                     "--with-explainer", "--explainer-texts", "30", "--json")
    record = json.loads(result.stdout)
    assert record["active"] is True
    # Its explainer, fitted on the texts it was trained on, signed beside it.
    explainer = record["explainer"]
    assert explainer["targets"]["texts"] == 30 and explainer["model_id"] == record["id"]
    directory = Path(record["path"]) / "explainers" / explainer["id"]
    assert (directory / "MANIFEST.sig.json").is_file()
    assert {"accuracy", "macro_f1"} <= set(record["metrics"]) and "accuracy" in record["baseline"]
    assert "training" in result.stderr  # the progress bar
    listed = json.loads(run_cli(tmp_path / "h", "models", "--json").stdout)
    assert [m["id"] for m in listed] == [record["id"]]


def test_an_explainer_that_cannot_be_fitted_after_training_loses_no_model(tmp_path,
                                                                          trained_home):
    from models.registry import ModelRegistry

    base = ModelRegistry(trained_home).active_path()
    data = write_csv(tmp_path / "few.csv", synthetic_rows(7))
    common = ["train", "--data", str(data), "--max-length", "32", "--base-model", str(base),
              "--recipe", "fine-tune", "--epochs", "1", "--with-explainer"]
    asked_too_few = run_cli(tmp_path / "h", *common, "--explainer-texts", "5", check=False)
    assert asked_too_few.returncode == 2 and "at least 20" in asked_too_few.stderr
    assert not (tmp_path / "h" / "models").exists()  # refused before the minutes of training
    # 21 rows: fewer than 20 besides the test split.
    result = run_cli(tmp_path / "h", *common, check=False)
    assert result.returncode == 4, result.stderr
    assert "the model is saved, but its explainer was not fitted" in result.stderr
    (model,) = json.loads(run_cli(tmp_path / "h", "models", "--json").stdout)
    assert model["active"] and not (Path(model["path"]) / "explainers").exists()


def test_a_small_file_trains_setfit_by_itself_and_says_so(tmp_path, trained_home):
    """24 training rows a class: the automatic recipe is SetFit (its encoder, the tiny model
    already trained on this task, gives embeddings a logistic regression separates)."""
    from models.registry import ModelRegistry

    base = ModelRegistry(trained_home).active_path()
    data = write_csv(tmp_path / "mine.csv", synthetic_rows())
    common = ["--data", str(data), "--max-length", "32", "--base-model", str(base)]
    record = json.loads(run_cli(tmp_path / "h", "train", *common, "--json").stdout)
    assert record["recipe"] == "setfit" and record["active"] is True
    card = json.loads((Path(record["path"]) / "model_card.json").read_text())
    assert card["training"]["recipe_reason"].startswith("24 training examples a class on")
    told = run_cli(tmp_path / "h2", "train", *common, "--recipe", "fine-tune", "--epochs", "1")
    assert "Fine-tune (asked for; 24 training examples a class): 1 epochs run" in told.stdout


def test_no_command_without_a_display_runs_the_headless_demo(home):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                             "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "main.py"], cwd=PROJECT_ROOT, timeout=300,
                            env={**env, "CASEWISE_HOME": str(home), "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, check=True)
    assert "No display" in result.stderr
    out = result.stdout
    (model,) = json.loads(run_cli(home, "models", "--json").stdout)
    assert model["id"] in out
    assert out.count("  -> ") == 4  # the four sample cases


def test_explain_json_contract(home):
    text = "awful rash, but great relief later"
    answer = json.loads(run_cli(home, "explain", text, "--json", "--budget", "80",
                                "--method", "partition").stdout)
    assert set(answer) >= {"label", "base_values", "features", "method", "budget",
                           "model_calls", "seconds", "faithfulness", "flip"}
    assert answer["budget"] == 80 and answer["method"] == "partition"
    assert answer["context"] == "empty" and answer["precision"] == "float32"
    for feature in answer["features"]:
        assert text[feature["start"] : feature["end"]] == feature["text"]
        assert set(feature["values"]) == {"negative", "neutral", "positive"}
    assert set(answer["faithfulness"]) >= {"comprehensiveness", "sufficiency"}
    assert answer["flip"] is None or isinstance(answer["flip"], list)
    label = answer["label"]
    total = answer["base_values"][label] + sum(f["values"][label] for f in answer["features"])
    assert abs(total - answer["probabilities"][label]) < 1e-4


def test_explain_by_default_gives_errors_and_whether_the_top_words_settled(home):
    text = ("The medicine was awful and I got a terrible rash on my arms, but later the "
            "relief was great and the nurse was kind!")
    answer = json.loads(run_cli(home, "explain", text, "--json").stdout)
    assert answer["method"] == "refined" and answer["estimator"].startswith("KernelSHAP")
    assert all(set(f["errors"]) == set(f["values"]) for f in answer["features"])
    assert answer["uncertainty"]["kind"] == "bootstrap"
    assert isinstance(answer["uncertainty"]["settled"], bool)
    assert answer["first_answer"]["estimator"].startswith("shap Partition")
    printed = run_cli(home, "explain", text).stdout
    assert " ± " in printed and "top words" in printed.lower()
    short = json.loads(run_cli(home, "explain", "awful rash", "--json").stdout)
    assert short["method"] == "exact" and short["uncertainty"]["kind"] == "exact"


def test_fit_explainer_keeps_it_signed_beside_the_model(home, tmp_path):
    few = run_cli(home, "models", "--fit-explainer", check=False)  # 18 calibration texts
    assert few.returncode == 2 and "at least 20" in few.stderr
    data = write_csv(tmp_path / "train.csv", synthetic_rows())
    fitted = json.loads(run_cli(home, "models", "--fit-explainer", str(data), "--text-col",
                                "text", "--explainer-texts", "40", "--json").stdout)
    assert fitted["model_id"] and isinstance(fitted["enabled"], bool)
    assert fitted["targets"]["texts"] >= 20 and fitted["gate"]["texts"] >= 1
    (model,) = json.loads(run_cli(home, "models", "--json").stdout)
    directory = home / "models" / model["id"] / "explainers" / fitted["id"]
    assert (directory / "head.safetensors").is_file()
    assert (directory / "MANIFEST.sig.json").is_file()
    answer = json.loads(run_cli(home, "explain", "The medicine was awful and I got a "
                                "terrible rash, but the relief was great later on",
                                "--json", "--method", "amortized").stdout)
    assert answer["method"] == "amortized" and answer["uncertainty"]["kind"] == "heads"


def test_explain_empty_text_is_a_clear_error(home):
    result = run_cli(home, "explain", "  ", check=False)
    assert result.returncode == 2 and "empty" in result.stderr


def test_a_damaged_model_is_listed_as_damaged_and_the_others_still_show(home, tmp_path):
    (model,) = json.loads(run_cli(home, "models", "--json").stdout)
    broken = os.path.join(os.path.dirname(model["path"]), "20000101-000000-deadbeef")
    shutil.copytree(model["path"], broken)
    with open(os.path.join(broken, "casewise.json"), "w") as handle:
        handle.write("{not json")
    listed = json.loads(run_cli(home, "models", "--json").stdout)
    assert {m["id"] for m in listed} == {model["id"], "20000101-000000-deadbeef"}
    assert [m["problem"] is not None for m in listed] == [True, False]
    text = run_cli(home, "models").stdout
    assert "damaged" in text and model["id"] in text

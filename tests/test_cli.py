import json
import os
import subprocess
import sys

from conftest import ROOT


def cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "alcore", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def test_run_prints_a_line_per_round_and_writes_files(tmp_path):
    out, csv = tmp_path / "r.json", tmp_path / "r.csv"
    p = cli("run", "--dataset", "digits", "--model", "softmax", "--strategy", "margin", "--initial", "10",
            "--batch-size", "10", "--rounds", "3", "--seed", "0", "--max-epochs", "10",
            "--out", str(out), "--csv", str(csv))
    assert p.returncode == 0, p.stderr
    assert sum(line.startswith("round ") for line in p.stdout.splitlines()) == 4
    data = json.loads(out.read_text())
    assert data["config"]["batch_size"] == 10 and len(data["rounds"]) == 4
    assert len(csv.read_text().splitlines()) == 5
    s = cli("summarize", str(out), "--at", "40", "--target-accuracy", "0.5")
    assert s.returncode == 0 and "margin" in s.stdout and "acc@40" in s.stdout and "labels_to_50%" in s.stdout
    a = cli("autolabel", str(out), "--per-step", "20", "--steps", "2")
    assert a.returncode == 0, a.stderr
    assert [line.split()[1] for line in a.stdout.splitlines()[1:4]] == ["0", "20", "40"]
    assert "test accuracy change" in a.stdout


def test_optional_fields_can_be_unset(tmp_path):
    out = tmp_path / "b.json"
    p = cli("run", "--rounds", "none", "--label-budget", "25", "--batch-size", "5", "--max-epochs", "5",
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    data = json.loads(out.read_text())
    assert data["config"]["rounds"] is None and [r["n_labeled"] for r in data["rounds"]] == [10, 15, 20, 25]


def test_probcover_says_its_radius_once_and_the_file_keeps_it(tmp_path):
    out = tmp_path / "p.json"
    p = cli("run", "--strategy", "probcover", "--initial-strategy", "typiclust", "--rounds", "2", "--max-epochs", "5",
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    said = [line for line in p.stdout.splitlines() if line.startswith("probcover: ball radius")]
    assert len(said) == 1 and "purity rule" in said[0]
    rounds = json.loads(out.read_text())["rounds"]
    assert rounds[0]["probcover_radius"] == rounds[1]["probcover_radius"] == float(said[0].split()[3].rstrip(","))
    assert "probcover_radius" not in rounds[2]  # the last round picks nothing


def test_uherding_says_the_temperature_it_calibrated_each_round_and_the_file_keeps_it(tmp_path):
    out = tmp_path / "u.json"
    p = cli("run", "--strategy", "uherding", "--uherding-temperature", "none", "--initial", "20", "--rounds", "2",
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    said = [line for line in p.stdout.splitlines() if line.startswith("uherding: T = ")]
    assert len(said) == 2 and "on the last 6 of 20 labels" in said[0] and "on the last 9 of 30 labels" in said[1]
    data = json.loads(out.read_text())
    assert data["config"]["uherding_temperature"] is None
    rounds = data["rounds"]
    assert [f"uherding: T = {r['uherding_temperature']:g}:" for r in rounds[:2]] == [s.split(" ECE")[0] for s in said]
    assert rounds[0]["uherding_calibration"]["held_out"] == 6 and "uherding_temperature" not in rounds[2]
    fixed = cli("run", "--strategy", "uherding", "--uherding-temperature", "2.5", "--rounds", "1")
    assert fixed.returncode == 0, fixed.stderr
    assert "uherding: temperature 2.5, as set (uherding_temperature)" in fixed.stdout


def test_bad_arguments_exit_nonzero_and_say_what_is_allowed(tmp_path):
    p = cli("run", "--strategy", "psychic")
    assert p.returncode == 2 and "invalid choice: 'psychic'" in p.stderr and "margin" in p.stderr
    p = cli("run", "--batch-size", "0")
    assert p.returncode == 2 and "--batch-size" in p.stderr and "greater than or equal to 1" in p.stderr
    p = cli("run", "--pool-size", "100", "--batch-size", "500")
    assert p.returncode == 2 and "batch_size 500 is larger than the" in p.stderr
    p = cli("run", "--dataset", "idx", "--data-dir", str(tmp_path))
    assert p.returncode == 2 and "no idx training files" in p.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    p = cli("summarize", str(bad))
    assert p.returncode == 2 and "bad.json: missing 'schema_version'" in p.stderr


def test_run_on_self_supervised_embeddings_shows_progress_then_reads_the_cache(tmp_path):
    """--embedding self_supervised trains the encoder with a progress bar (on standard error) and
    says where the embeddings went; the same command again reads them from the cache."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), ALCORE_CACHE_DIR=str(tmp_path))
    args = [sys.executable, "-m", "alcore", "run", "--embedding", "self_supervised", "--encoder-steps", "10",
            "--embedding-dim", "16", "--rounds", "1", "--out", str(tmp_path / "r.json")]
    first = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "training the encoder" in first.stderr and "10/10" in first.stderr and "loss=" in first.stderr
    assert "self_supervised embeddings (16 numbers per image) computed in" in first.stdout
    second = subprocess.run(args + ["--no-progress"], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert "read from the cache" in second.stdout and "training the encoder" not in second.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["config"]["embedding"] == "self_supervised" and data["config"]["encoder_steps"] == 10

"""Every mistake a user can make answered in one line: exit status 2, one ``error:`` line naming the problem and the
fix (in the command line's terms for the CLI, in Python's for the API), no traceback, nothing written or deleted in
the user's folders. Also: the CLI starts without torch where it needs no model, and `make demo` installs only
what the demo needs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import set_hf_offline

import hub_models
from hub_models.errors import DataError, WeightsError
from hub_models.models.toy2d import GanToy2D

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "hub_models" / "weights"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, code: str = "") -> tuple:
    """``hub-models ARGS`` in a fresh process (``code``: Python run first, e.g. an import blocker)."""
    script = f"{code}\nimport sys\nfrom hub_models.cli import main\nsys.exit(main(sys.argv[1:]))"
    environ = {k: v for k, v in os.environ.items() if k != "HUB_MODELS_DATA"}
    proc = subprocess.run(
        [sys.executable, "-P", "-c", script, *args],  # -P: the installed package (or PYTHONPATH's), not the cwd's
        capture_output=True,
        text=True,
        timeout=300,
        env={**environ, **(env or {})},
        cwd=cwd,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line(result: tuple, *needles: str) -> str:
    code, _, err = result
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "usage:" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------- a --data folder without the data set


def test_eval_data_folder_without_mnist_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "celeba-like"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    before = tree(folder)
    result = run_cli("eval", "vae-digits", "--data", str(folder), "--num-samples", "100", env={"HF_HUB_OFFLINE": "1"})
    assert_one_line(result, f"{folder} has no MNIST files", "train-images-idx3-ubyte", "--data")
    assert tree(folder) == before  # no MNIST/raw left behind, nothing downloaded into it


def test_python_data_error_speaks_python(tmp_path):
    from hub_models.data.mnist import load_mnist

    with pytest.raises(DataError, match="has no Fashion-MNIST files") as caught:
        load_mnist(tmp_path, "test", name="fashion-mnist")
    assert "--data" not in str(caught.value) and "apt-get install dataset-fashion-mnist" in str(caught.value)
    assert "--data" in caught.value.cli
    assert tree(tmp_path) == []


# ---------------------------------------------------------------- weights: unreachable Hub, offline cache miss


def test_unreachable_and_offline_give_one_weights_error_in_python(local_hub, monkeypatch):
    local_hub.stop()  # the endpoint refuses connections from now on
    for call in (
        lambda: hub_models.load("gan-toy2d", revision="v9"),
        lambda: GanToy2D.from_pretrained("org/x"),
        lambda: GanToy2D.from_pretrained("org/x", force_download=True),  # the mixin: "Force download failed"
    ):
        with pytest.raises(WeightsError, match="cannot reach the Hugging Face Hub") as caught:
            call()
        assert "\n" not in str(caught.value) and "--" not in str(caught.value)
    with pytest.raises(WeightsError, match=r"hub-models download gan-toy2d.*weights=DIR"):
        hub_models.load("gan-toy2d", revision="v9")

    set_hf_offline(monkeypatch, True)
    with pytest.raises(WeightsError, match=r"HF_HUB_OFFLINE is set: run `hub-models download gan-toy2d`.*weights=DIR"):
        hub_models.load("gan-toy2d", revision="v9")
    with pytest.raises(WeightsError, match="org/x is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"):
        GanToy2D.from_pretrained("org/x")  # was huggingface_hub's LocalEntryNotFoundError


@pytest.mark.parametrize("offline", ["0", "1"])
def test_unreachable_and_offline_give_one_line_in_every_command(local_hub, tmp_path, offline):
    local_hub.stop()
    env = {"HF_ENDPOINT": local_hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": offline}
    problem = "HF_HUB_OFFLINE is set" if offline == "1" else "cannot reach the Hugging Face Hub"
    fix = ("hub-models download gan-toy2d", "--weights DIR")
    assert_one_line(run_cli("generate", "gan-toy2d", "--revision", "v9", env=env, cwd=tmp_path), problem, *fix)
    assert_one_line(run_cli("eval", "gan-toy2d", "--revision", "v9", env=env, cwd=tmp_path), problem, *fix)
    assert_one_line(run_cli("generate", "org/x", env=env, cwd=tmp_path), problem, "org/x")
    err = assert_one_line(run_cli("download", "gan-toy2d", env=env, cwd=tmp_path), "hub-models/gan-toy2d")
    assert "weights=" not in err
    assert not list(tmp_path.glob("*.png"))


# ---------------------------------------------------------------- optional dependencies and the demo's port

BLOCK_TORCHMETRICS = textwrap.dedent(
    """
    import sys
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torchmetrics":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Blocker())
    """
)


def test_eval_without_the_eval_extra_names_it():
    result = run_cli("eval", "gan-digits-mlp", "--num-samples", "100", code=BLOCK_TORCHMETRICS)
    assert_one_line(result, "torchmetrics", 'pip install "hub-models[eval]"')


def test_demo_on_a_port_in_use_names_the_option(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--port", str(port), env={"HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
        assert_one_line(result, f"port {port}", "--port", "make demo PORT=")
        result = run_cli("demo", env={"HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(port)}, cwd=tmp_path)
        assert_one_line(result, f"port {port}", "make demo PORT=")


# ---------------------------------------------------------------- generate: directories, options, argument errors


def test_generate_a_checkpoint_directory_takes_the_models_options(tmp_path):
    checkpoint = tmp_path / "my-run"
    shutil.copytree(BUNDLED / "cgan-digits-mlp", checkpoint)
    outputs = {}
    for model, label in ((str(checkpoint), "7"), ("cgan-digits-mlp", "7"), (str(checkpoint), "3")):
        outputs[model, label] = tmp_path / f"{len(outputs)}.npy"
        code, _, err = run_cli("generate", model, "--label", label, "-n", "10", "-o", str(outputs[model, label]))
        assert code == 0, err
    samples = {key: np.load(path) for key, path in outputs.items()}
    np.testing.assert_array_equal(samples[str(checkpoint), "7"], samples["cgan-digits-mlp", "7"])  # like the id
    assert not np.array_equal(samples[str(checkpoint), "7"], samples[str(checkpoint), "3"])  # the label reached it
    code, out, _ = run_cli("generate", str(checkpoint), "--help")
    assert code == 0 and "--label {all,0,1,2,3,4,5,6,7,8,9}" in out and "checkpoint directory" in out


def test_undeclared_option_is_reported_by_the_model():
    assert_one_line(
        run_cli("generate", "cgan-digits", "--truncation", "0.5"),
        "cgan-digits has no option --truncation (its own options: --label",
        "hub-models generate cgan-digits --help",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "gan-toy2d", "-n", "x"], "argument -n/--num: invalid int value: 'x'"),
        (["info"], "the following arguments are required: model"),
        (["eval", "gan-toy2d", "--num-samples"], "expected one argument"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["list", "--long"], "unrecognized arguments: --long"),
    ],
)
def test_argument_errors_are_one_line_with_a_pointer_to_help(args, message):
    assert_one_line(run_cli(*args), message, "--help`)")


# ---------------------------------------------------------------- the digit metrics' classifier offline


def test_eval_takes_a_local_classifier(tmp_path, monkeypatch, hf_cache):
    from hub_models.metrics import mnist_classifier

    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line(run_cli("eval", "gan-digits-mlp", "--classifier", str(empty)), f"--classifier {empty}")
    assert tree(empty) == []

    copy = tmp_path / "judge"
    shutil.copytree(BUNDLED / "mnist-classifier", copy)
    monkeypatch.setenv("HUB_MODELS_CLASSIFIER", str(copy))
    assert mnist_classifier.classifier_dir() == copy
    # a pip install has no local copy: offline, the error says how to point at one
    monkeypatch.delenv("HUB_MODELS_CLASSIFIER")
    monkeypatch.setattr(mnist_classifier, "has_local_copy", lambda cls: False)
    set_hf_offline(monkeypatch, True)
    with pytest.raises(WeightsError, match="hub-models download --all.*HUB_MODELS_CLASSIFIER") as caught:
        mnist_classifier.classifier_dir()
    assert "--classifier DIR" in caught.value.cli


# ---------------------------------------------------------------- start-up without torch; the list


def test_version_help_and_a_repeated_list_do_not_import_torch(tmp_path):
    probe = (
        "import sys, contextlib, io\nfrom hub_models.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules, len(out.getvalue()) > 0)"
    )
    env = {**os.environ, "HUB_MODELS_CACHE": str(tmp_path)}
    subprocess.run([sys.executable, "-P", "-m", "hub_models.cli", "list"], env=env, check=True, capture_output=True)
    for args in (["--version"], ["--help"], ["generate", "--help"], ["list"]):
        proc = subprocess.run([sys.executable, "-P", "-c", probe, *args], capture_output=True, text=True, env=env)
        assert proc.stdout.split()[-2:] == ["False", "True"], (args, proc.stdout, proc.stderr)


def test_list_has_a_header_and_aligned_columns(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "hub_models.cli", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "HUB_MODELS_CACHE": str(tmp_path)},
    )
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "OUTPUT", "INPUTS", "WEIGHTS", "PACKAGE", "SUMMARY"]
    for column in ("OUTPUT", "INPUTS", "WEIGHTS", "PACKAGE", "SUMMARY"):
        start = lines[0].index(column)
        assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[1:]), column
    assert {line.split()[0] for line in lines[1:]} == set(hub_models.list_models())


# ---------------------------------------------------------------- make demo installs the demo's needs only


def test_make_demo_installs_only_the_demo_extra(tmp_path):
    plan = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert installs and all("'.[demo]'" in line for line in installs), plan
    assert "[test]" not in plan and "fid-helper" not in plan
    full = subprocess.run(
        ["make", "-n", "setup", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "'.[test]'" in full and "fid-helper" in full

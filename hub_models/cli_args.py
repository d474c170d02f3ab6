"""The ``hub-models`` command line's arguments: one parser per command, one-line argument errors.

``build_parser`` imports nothing heavy: the options that need a plugin class (``generate MODEL``'s declared
inputs) or the training engine (``train``'s settings) are added only for the command about to run, so
``hub-models --version``, ``--help`` and ``list`` start without torch.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import NoReturn

from .errors import HubModelsError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: MESSAGE (see `hub-models COMMAND --help`)``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise HubModelsError(f"{message} (see `{self.prog} --help`)")


def _add_hub(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", help="Hub branch, tag or commit (default: the model's pinned revision)")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or `hf auth login`)")
    p.add_argument("--cache-dir", type=Path, help="Hugging Face cache directory (default: HF_HUB_CACHE)")
    p.add_argument("--force-download", action="store_true", help="fetch again even if cached")
    p.add_argument("--local-files-only", action="store_true", help="use the cache only, never the network")


def _add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        help="a local checkpoint dir or a Hub repo id org/name[@revision] (default: the local copy if any, "
        "else the model's Hub repo at its pinned revision)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    _add_hub(p)


def build_parser(model_cls: type | None = None, command: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``model_cls``: the model named after ``generate``, whose declared inputs become options.

    ``command``: the command about to run. The options of ``train`` (one per training setting) are added only for
    ``train``, so the other commands, ``--help`` and ``--version`` do not import the engine (nor torch)."""
    parser = Parser(
        prog="hub-models", description="hub-models: list, describe, train, generate, evaluate and publish models."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="list installed model plugins")
    sub.add_parser("info", help="describe a model: config, inputs, metrics, bundled weights").add_argument("model")
    _add_train_and_recipe(sub, command)
    _add_generate(sub, model_cls)
    _add_eval(sub)
    _add_download_publish_push(sub)
    _add_demo(sub)
    return parser


def _add_train_and_recipe(sub: argparse._SubParsersAction, command: str | None) -> None:
    p = sub.add_parser("train", help="train a model with the shared engine")
    p.add_argument("model")
    p.add_argument(
        "--config",
        type=Path,
        help="a recipe TOML with [config] and [train] tables (default: the model's own recipe, which produced its "
        "published weights: `hub-models recipe MODEL` prints it); options given here override its [train]",
    )
    p.add_argument("--out", type=Path, help="run directory (default: runs/MODEL)")
    p.add_argument("--data", help="data set directory (default: $HUB_MODELS_DATA/<dataset> or download)")
    if command == "train":
        _add_settings(p)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model config field (repeatable), e.g. --set lr_g=0.001",
    )

    p = sub.add_parser("recipe", help="print a model's training recipe (what `hub-models train MODEL` trains)")
    p.add_argument("model", help="a model id, or a recipe variant such as convgan-faces128-gpu")


def _add_generate(sub: argparse._SubParsersAction, model_cls: type | None) -> None:
    # -h is ours, not argparse's: the help is printed once the model is known, with the model's own options
    p = sub.add_parser(
        "generate", help="generate samples: -o x.png (grid) or -o x.npy (raw array)", add_help=False,
        description="Generate samples. MODEL is a model id (`hub-models list`), a checkpoint directory (written by "
        "`hub-models train` or `save_pretrained`) or a Hub repo id org/name[@revision]; "
        "`hub-models generate MODEL --help` also lists MODEL's own options (its declared inputs).",
    )  # fmt: skip
    p.set_defaults(generate_parser=p)
    p.add_argument("-h", "--help", action="store_true", help="show this help (with MODEL's own options) and exit")
    p.add_argument("model", nargs="?", help="a model id, a checkpoint directory or a Hub repo id org/name[@rev]")
    _add_weights(p)
    p.add_argument("-n", "--num", type=int, default=16, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, help="output .png/.jpg (grid) or .npy (uint8 N×C×H×W or float32 N×2)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="any declared model input")
    if model_cls is not None:
        _add_inputs(p, model_cls)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="measure a model's metrics and print them as JSON")
    p.add_argument("model", help="a model id, a checkpoint directory or a Hub repo id org/name[@rev]")
    _add_weights(p)
    p.add_argument("--data", help="data set directory (default: $HUB_MODELS_DATA/<dataset>, else a download)")
    p.add_argument(
        "--classifier",
        metavar="DIR",
        help="the MNIST classifier of the digit metrics: a local checkpoint directory (default: "
        "$HUB_MODELS_CLASSIFIER, else the local copy, else hub-models/mnist-classifier from the Hub)",
    )
    p.add_argument("--num-samples", type=int, help="generated samples (default: the model's full protocol)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--update-card",
        action="store_true",
        help="record the metrics in the checkpoint's config.json and model card (local dirs only)",
    )


def _add_download_publish_push(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="fetch models' weights from the Hub into the cache (for offline use)")
    p.add_argument("models", nargs="*", metavar="MODEL")
    p.add_argument("--all", action="store_true", help="every installed model")
    _add_hub(p)

    p = sub.add_parser("publish", help="push every local checkpoint (or MODEL...) to ORG/<model-id> on the Hub")
    p.add_argument("models", nargs="*", metavar="MODEL")
    p.add_argument("--org", required=True, help="Hub user or organisation")
    p.add_argument("--private", action="store_true")
    p.add_argument("--no-tag", action="store_true", help="do not tag the pinned revision")

    p = sub.add_parser("push", help="upload a checkpoint directory (and its TensorBoard logs) to the Hub")
    p.add_argument("directory", type=Path)
    p.add_argument("--repo-id", required=True)
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", "--branch", dest="revision", help="branch to push to (created if missing)")
    p.add_argument("--logs", type=Path, help="TensorBoard log dir (default: DIRECTORY/../logs)")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="start the Gradio demo (also: python demo/app.py [options])")
    # no defaults: Gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (a Space sets them), else 127.0.0.1 and
    # the first free port from 7860; an option given here wins over the environment
    p.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: $GRADIO_SERVER_PORT, else 7860)")
    p.add_argument("--share", action="store_true")
    p.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="MODEL=REF",
        help="weights for one model (repeatable): MODEL as `hub-models list` prints it, REF a Hub repo "
        "org/name[@revision] or a local directory, e.g. dcgan-faces=org/dcgan-faces@v1",
    )


def _add_settings(p: argparse.ArgumentParser) -> None:
    """One option per TrainSettings field, with its help (unset options fall back to the recipe, then defaults)."""
    import typing

    from .engine.settings import TrainSettings

    types = typing.get_type_hints(TrainSettings)
    for f in dataclasses.fields(TrainSettings):
        flag, kind = "--" + f.name.replace("_", "-"), types[f.name]
        if kind is bool and f.default is True:
            p.add_argument(
                "--no-" + flag[2:], dest=f.name, action="store_false", default=None, help=f"do not {f.metadata['help']}"
            )
        elif kind is bool:
            p.add_argument(flag, action="store_true", default=None, help=f.metadata["help"])
        else:
            base = next(t for t in typing.get_args(kind) or (kind,) if t is not type(None))
            p.add_argument(flag, type=base, choices=f.metadata.get("choices"), help=f.metadata["help"])


def _version() -> str:
    from .version import __version__

    return __version__


def _add_inputs(p: argparse.ArgumentParser, model_cls: type) -> None:
    """One option per declared input of ``model_cls`` (``--label 3``). The values reach ``generate`` as text:
    the model's ``Input.parse`` converts and checks them, so a bad value is one clear line, as everywhere."""
    group = p.add_argument_group(f"{model_cls.model_id} options (its declared inputs)")
    for spec in model_cls.inputs:
        if spec.kind == "choice":
            metavar = "{" + ",".join(spec.choices) + "}"
        else:
            metavar = spec.kind.upper()
        limits = ""
        if spec.minimum is not None or spec.maximum is not None:
            limits = f", from {spec.minimum} to {spec.maximum}"
        text = f"{spec.help or spec.label or spec.name} (default: {spec.default}{limits})"
        flag = "--" + spec.name.replace("_", "-")
        try:
            group.add_argument(flag, dest=f"input:{spec.name}", metavar=metavar, help=text)
        except argparse.ArgumentError:
            continue  # an input named like a generate option (e.g. "seed"): still reachable as --input NAME=VALUE


def options_from(unknown: list[str]) -> dict[str, str | None]:
    """``--NAME VALUE`` / ``--NAME=VALUE`` pairs the parser did not know: inputs for the model to check (a flag
    with no value maps to None)."""
    options: dict[str, str | None] = {}
    rest = list(unknown)
    while rest:
        item = rest.pop(0)
        name, sep, value = item[2:].partition("=")
        if not item.startswith("--") or not name:
            raise HubModelsError(f"unrecognized arguments: {' '.join(unknown)} (see `hub-models generate --help`)")
        if not sep:
            value = rest.pop(0) if rest and not rest[0].startswith("--") else None
        options[name.replace("-", "_")] = value
    return options

"""The ``hub-models`` command line: list, info, train, generate, eval, download, push, publish, demo.

Errors a user can cause print one line (``error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from .errors import HubModelsError


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


def build_parser(model_cls: type | None = None) -> argparse.ArgumentParser:
    """The command line; ``model_cls``: the model named after ``generate``, whose declared inputs become options."""
    parser = argparse.ArgumentParser(
        prog="hub-models", description="hub-models: list, describe, train, generate, evaluate and publish models."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="list installed model plugins")

    p = sub.add_parser("info", help="describe a model: config, inputs, metrics, bundled weights")
    p.add_argument("model")

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

    # -h is ours, not argparse's: the help is printed once the model is known, with the model's own options
    p = sub.add_parser(
        "generate", help="generate samples: -o x.png (grid) or -o x.npy (raw array)", add_help=False,
        description="Generate samples. `hub-models generate MODEL --help` also lists MODEL's own options.",
    )  # fmt: skip
    p.set_defaults(generate_parser=p)
    p.add_argument("-h", "--help", action="store_true", help="show this help (with MODEL's own options) and exit")
    p.add_argument("model", nargs="?", help="a model id, as `hub-models list` prints it")
    _add_weights(p)
    p.add_argument("-n", "--num", type=int, default=16, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, help="output .png/.jpg (grid) or .npy (uint8 N×C×H×W or float32 N×2)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="any declared model input")
    if model_cls is not None:
        _add_inputs(p, model_cls)

    p = sub.add_parser("eval", help="measure a model's metrics and print them as JSON")
    p.add_argument("model")
    _add_weights(p)
    p.add_argument("--data", help="data set directory (default: $HUB_MODELS_DATA/<dataset>)")
    p.add_argument("--num-samples", type=int, help="generated samples (default: the model's full protocol)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--update-card",
        action="store_true",
        help="record the metrics in the checkpoint's config.json and model card (local dirs only)",
    )

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
    return parser


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


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HubModelsError(f"{what} {item!r} must look like NAME=VALUE")
        out[key.strip().replace("-", "_")] = value
    return out


def _typed(cls: type, key: str, raw: str) -> Any:
    """Parse a --set value with the type of the dataclass field's default."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if key not in fields:
        raise HubModelsError(f"unknown config field {key!r}; fields: {', '.join(sorted(fields))}")
    default = fields[key].default
    try:
        if isinstance(default, bool):
            if raw.lower() not in {"true", "false", "1", "0"}:
                raise ValueError
            return raw.lower() in {"true", "1"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if default is None:
            return json.loads(raw)
    except (ValueError, json.JSONDecodeError):
        raise HubModelsError(f"config field {key} expects a {type(default).__name__}, got {raw!r}") from None
    return raw


def cmd_list(args: argparse.Namespace) -> int:
    from .locations import distribution, has_local_copy, hub_repo_id, pinned_revision
    from .registry import conflicts, get_model_class, list_models, plugin_errors

    for model_id in list_models():
        cls = get_model_class(model_id)
        weights = "local copy" if has_local_copy(cls) else f"{hub_repo_id(cls)}@{pinned_revision(cls)}"
        inputs = ", ".join(spec.name for spec in cls.inputs) or "-"
        package = distribution(model_id)[0]
        print(
            f"{model_id:<20} {cls.output:<7} inputs: {inputs:<12} {weights:<32} {package:<18} "
            f"{' '.join(cls.card.summary.split())}"  # whole: "et al., 2016" and "std 0.05" hold full stops
        )
    for model_id, error in plugin_errors().items():
        print(f"{model_id:<20} BROKEN  {error}")
    for clash in conflicts():
        print(f"{clash.model_id:<20} CONFLICT {clash.message()}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .engine import model_recipe
    from .locations import bundled_dir, hub_repo_id, pinned_revision
    from .registry import get_model_class

    cls = get_model_class(args.model)
    bundled = bundled_dir(cls)
    info = {
        "model_id": cls.model_id,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "output": cls.output,
        "summary": cls.card.summary,
        "dataset": cls.dataset_for(),
        "config_defaults": dataclasses.asdict(cls.Config()),
        "recipe": model_recipe(cls).train,
        "inputs": [dataclasses.asdict(spec) for spec in cls.inputs],
        "metrics": [dataclasses.asdict(m) for m in cls.metrics],
        "bundled_weights": str(bundled) if (bundled / "config.json").is_file() else None,
        "hub_repo": hub_repo_id(cls),
        "hub_revision": pinned_revision(cls),
    }
    if info["bundled_weights"]:
        info["bundled_metrics"] = json.loads((bundled / "config.json").read_text()).get("metrics", {})
    print(json.dumps(info, indent=2, default=str))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .engine import TrainSettings, fit, resolve_training
    from .registry import get_model_class

    cls = get_model_class(args.model)
    overrides = {key: _typed(cls.Config, key, raw) for key, raw in _pairs(args.set, "--set").items()}
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainSettings)}
    config, settings, recipe = resolve_training(cls, args.config, config_overrides=overrides, settings=chosen)
    model = cls(config)  # the engine draws the initialisation from settings.seed
    out = args.out or Path("runs") / cls.model_id
    command = " ".join(shlex.quote(a) for a in ["hub-models", *sys.argv[1:]])
    if args.config:
        command = f"hub-models train {cls.model_id} --config {args.config}"
    export = fit(model, settings, out, data_root=args.data, command=command, recipe=recipe)
    print(f"model written to {export}")
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from .engine import packaged_recipes, recipe_text
    from .registry import get_model_class, list_models

    own = packaged_recipes()
    if args.model in own and args.model not in list_models():  # a variant (or the digit models' judge)
        print(own[args.model].read_text(encoding="utf-8"), end="")
        return 0
    print(recipe_text(get_model_class(args.model)), end="")
    return 0


def _hub(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "revision": args.revision,
        "token": args.token,
        "cache_dir": args.cache_dir,
        "force_download": args.force_download,
        "local_files_only": args.local_files_only,
    }


def _load(args: argparse.Namespace):
    from .registry import load

    return load(args.model, weights=args.weights, device=args.device, **_hub(args))


def cmd_generate(args: argparse.Namespace, extra: dict[str, str]) -> int:
    from .images import save_samples
    from .inference import optimize_for_inference

    model = optimize_for_inference(_load(args))  # BatchNorm folded: the same samples up to rounding, faster
    inputs = {**_pairs(args.input, "--input"), **extra}
    samples = model.generate(args.num, seed=args.seed, **inputs)
    output = args.output or Path(f"{model.model_id}-seed{args.seed}.png")
    picture = None
    if output.suffix.lower() != ".npy":
        picture = model.render(samples, nrow=model.grid_nrow(len(samples), **model.parse_inputs(inputs)))
    save_samples(samples, output, picture=picture)
    print(f"wrote {len(samples)} samples to {output}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .weights import update_metrics

    model = _load(args)
    if args.num_samples is not None and args.num_samples < 1:
        raise HubModelsError("--num-samples must be a positive integer")
    metrics = model.evaluate(data_root=args.data, num_samples=args.num_samples, seed=args.seed)
    if args.update_card:
        target = Path(args.weights) if args.weights else model.weights_dir
        if target is None or not Path(target).is_dir():
            raise HubModelsError("--update-card needs a local checkpoint directory in --weights")
        update_metrics(Path(target), model, metrics)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .locations import hub_repo_id, pinned_revision
    from .registry import get_model_class, list_models
    from .weights import HubOptions, download

    if not args.models and not args.all:
        raise HubModelsError("name the models to download, or pass --all")
    for model_id in list_models() if args.all else args.models:
        cls = get_model_class(model_id)
        hub = HubOptions(**{**_hub(args), "revision": args.revision or pinned_revision(cls)})
        folder = download(hub_repo_id(cls), hub)
        print(f"{model_id}: {hub_repo_id(cls)}@{hub.revision} -> {folder}")
    if args.all:  # what the metrics need besides the models (e.g. the MNIST classifier of the digit metrics)
        from .locations import ASSETS, hub_asset_repo_id
        from .version import __version__

        for name in ASSETS:
            hub = HubOptions(**{**_hub(args), "revision": args.revision or f"v{__version__}"})
            print(f"{name}: {hub_asset_repo_id(name)}@{hub.revision} -> {download(hub_asset_repo_id(name), hub)}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .hub import publish

    for model_id, repo_id, url in publish(args.org, args.models or None, private=args.private, tag=not args.no_tag):
        print(f"{model_id}: {repo_id} {url}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import push

    url = push(args.directory, args.repo_id, private=args.private, revision=args.revision, logs=args.logs)
    print(f"pushed {args.directory} to {url}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from .app import launch, weights_option
    except ImportError as exc:
        raise HubModelsError(f"the demo needs gradio: pip install 'hub-models[demo]' ({exc})") from None
    launch(host=args.host, port=args.port, share=args.share, weights=weights_option(args.weights))
    return 0


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


def _model_for_generate(argv: list[str]) -> type | None:
    """The plugin class named after ``generate`` (None: another command, no model yet, or a Hub repo id)."""
    if not argv or argv[0] != "generate":
        return None
    known, _ = build_parser().parse_known_args(argv)  # exits with argparse's message when argv cannot parse at all
    if not known.model or "/" in known.model:
        return None
    from .registry import get_model_class

    return get_model_class(known.model)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(_model_for_generate(argv)).parse_args(argv)
        if args.command == "generate":
            if args.help:
                args.generate_parser.print_help()
                return 0
            if not args.model:
                args.generate_parser.error("the following arguments are required: model")
            extra = {k.partition(":")[2]: v for k, v in vars(args).items() if k.startswith("input:") and v is not None}
            return cmd_generate(args, extra)
        handlers = {
            "list": cmd_list,
            "info": cmd_info,
            "train": cmd_train,
            "recipe": cmd_recipe,
            "eval": cmd_eval,
            "download": cmd_download,
            "publish": cmd_publish,
            "push": cmd_push,
            "demo": cmd_demo,
        }
        return handlers[args.command](args)
    except HubModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

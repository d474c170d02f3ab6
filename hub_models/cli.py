"""The ``hub-models`` command line: list, info, train, recipe, generate, eval, download, push, publish, demo.

Errors a user can cause print one line (``error: ...``, in the command line's terms: ``HubModelsError.cli``) and
exit with status 2; so do argument errors, with a pointer to the command's ``--help``. Nothing heavy is imported
before a command needs it (torch only once a model is), so ``--version``, ``--help`` and ``list`` start at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .cli_args import build_parser, options_from
from .errors import HubModelsError, HubModelsWarning

# what `hub-models download` says when the Hub is out of reach (CLI wording only: the command is the CLI's)
DOWNLOAD_HINT = (
    "retry once online; meanwhile the models with a local copy (`hub-models list`) and local checkpoint "
    "directories (--weights DIR) work without the Hub",
) * 2
EVAL_EXTRA = ("torchmetrics",)  # what `hub-models eval` imports from the [eval] extra


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
    from .catalog import catalog
    from .locations import distribution

    found = catalog()
    header = ("MODEL", "OUTPUT", "INPUTS", "WEIGHTS", "PACKAGE", "SUMMARY")
    rows = [
        (e.model_id, e.output, ", ".join(e.inputs) or "-", e.weights(), distribution(e.model_id)[0], e.summary)
        for e in found.entries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    for model_id, error in found.broken.items():
        print(f"{model_id.ljust(widths[0])}  BROKEN  {error}")
    for message in found.conflicts:
        print(f"CONFLICT  {message}")
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
    from .registry import get_trainable_class

    cls = get_trainable_class(args.model)  # a plugin, or the MNIST judge of the digit metrics
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
    from .registry import get_trainable_class, list_models

    own = packaged_recipes()
    if args.model in own and args.model not in list_models():  # a variant, or an asset such as the digits' judge
        print(own[args.model].read_text(encoding="utf-8"), end="")
        return 0
    print(recipe_text(get_trainable_class(args.model)), end="")
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


def cmd_generate(args: argparse.Namespace, extra: dict[str, str | None], model_cls: type | None = None) -> int:
    """``extra``: the ``--NAME VALUE`` options left over by the parser, checked against the model's declared inputs
    (before loading when the model is known from its id or its directory's config.json, else once loaded)."""
    from .images import save_samples
    from .inference import optimize_for_inference

    if model_cls is not None:
        _check_declared(model_cls, extra, args.model)
    model = _load(args)
    _check_declared(type(model), extra, args.model)
    for name, value in extra.items():
        if value is None:
            raise HubModelsError(
                f"--{name.replace('_', '-')} needs a value (see `hub-models generate {args.model} --help`)"
            )
    model = optimize_for_inference(model)  # BatchNorm folded: the same samples up to rounding, faster
    inputs = {**_pairs(args.input, "--input"), **extra}
    samples = model.generate(args.num, seed=args.seed, **inputs)
    output = args.output or Path(f"{model.model_id}-seed{args.seed}.png")
    picture = None
    if output.suffix.lower() != ".npy":
        picture = model.render(samples, nrow=model.grid_nrow(len(samples), **model.parse_inputs(inputs)))
    save_samples(samples, output, picture=picture)
    print(f"wrote {len(samples)} samples to {output}")
    return 0


def _check_declared(model_cls: type, options: dict[str, str | None], model_arg: str) -> None:
    undeclared = sorted(set(options) - {spec.name for spec in model_cls.inputs})
    if undeclared:
        flags = ", ".join("--" + name.replace("_", "-") for name in undeclared)
        own = ", ".join("--" + spec.name.replace("_", "-") for spec in model_cls.inputs) or "none"
        raise HubModelsError(
            f"{model_cls.model_id} has no option {flags} (its own options: {own}; "
            f"see `hub-models generate {model_arg} --help`)"
        )


def cmd_eval(args: argparse.Namespace) -> int:
    from .weights import update_metrics

    if args.num_samples is not None and args.num_samples < 1:
        raise HubModelsError("--num-samples must be a positive integer")
    if args.classifier is not None:
        _use_classifier(args.classifier)
    model = _load(args)
    try:
        metrics = model.evaluate(data_root=args.data, num_samples=args.num_samples, seed=args.seed)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in EVAL_EXTRA:
            raise
        raise HubModelsError(
            f'hub-models eval needs {missing}, which is not installed: pip install "hub-models[eval]"'
        ) from None
    if args.update_card:
        target = Path(args.weights) if args.weights else model.weights_dir
        if target is None or not Path(target).is_dir():
            raise HubModelsError("--update-card needs a local checkpoint directory in --weights")
        update_metrics(Path(target), model, metrics)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def _use_classifier(directory: str) -> None:
    """``--classifier DIR``: the digit metrics' judge from a local directory (as ``$HUB_MODELS_CLASSIFIER`` does)."""
    from .locations import CLASSIFIER_ENV, CONFIG_NAME

    if not (Path(directory).expanduser() / CONFIG_NAME).is_file():
        raise HubModelsError(
            f"--classifier {directory} has no {CONFIG_NAME}: point it at a copy of hub-models/mnist-classifier "
            "(`hub-models download --all` fetches one into the Hugging Face cache)"
        )
    os.environ[CLASSIFIER_ENV] = str(Path(directory).expanduser())


def cmd_download(args: argparse.Namespace) -> int:
    from .locations import hub_repo_id, pinned_revision
    from .registry import get_model_class, list_models
    from .weights import HubOptions, download

    if not args.models and not args.all:
        raise HubModelsError("name the models to download, or pass --all")
    for model_id in list_models() if args.all else args.models:
        cls = get_model_class(model_id)
        hub = HubOptions(**{**_hub(args), "revision": args.revision or pinned_revision(cls)})
        folder = download(hub_repo_id(cls), hub, hint=DOWNLOAD_HINT)
        print(f"{model_id}: {hub_repo_id(cls)}@{hub.revision} -> {folder}")
    if args.all:  # what the metrics need besides the models (e.g. the MNIST classifier of the digit metrics)
        from .locations import ASSETS, hub_asset_repo_id
        from .version import __version__

        for name in ASSETS:
            hub = HubOptions(**{**_hub(args), "revision": args.revision or f"v{__version__}"})
            folder = download(hub_asset_repo_id(name), hub, hint=DOWNLOAD_HINT)
            print(f"{name}: {hub_asset_repo_id(name)}@{hub.revision} -> {folder}")
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
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    try:
        port = args.port or int(os.environ.get("GRADIO_SERVER_PORT") or 0)
    except ValueError:
        raise HubModelsError(
            f"GRADIO_SERVER_PORT={os.environ['GRADIO_SERVER_PORT']!r} is not a port number: unset it or pass --port N"
        ) from None
    if port and not _port_free(host, port):
        raise HubModelsError(_port_in_use(host, port))
    try:
        launch(host=args.host, port=args.port, share=args.share, weights=weights_option(args.weights))
    except OSError as exc:  # Gradio found no free port (taken between the check above and its own bind)
        if "port" not in str(exc).lower():
            raise
        raise HubModelsError(_port_in_use(host, port or 7860)) from None
    return 0


def _port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on now (what Gradio will try; no SO_REUSEADDR, like Gradio)."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError:
        return False
    return True


def _port_in_use(host: str, port: int) -> str:
    return (
        f"port {port} on {host} is in use (another demo, or another server): stop it, or pick a free port with "
        f"--port {port + 1} (`make demo PORT={port + 1}`)"
    )


def _model_for_generate(argv: list[str]) -> type | None:
    """The plugin class of the MODEL after ``generate``: a model id, or a checkpoint directory's config.json
    ``model_type`` (None: another command, no model yet, a Hub repo id, or no readable config)."""
    if not argv or argv[0] != "generate":
        return None
    known, _ = build_parser().parse_known_args(argv)
    if not known.model:
        return None
    from .registry import get_model_class, list_models

    directory = Path(known.model).expanduser()
    if directory.is_dir():
        try:
            model_type = json.loads((directory / "config.json").read_text(encoding="utf-8"))["model_type"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # loading it says what is wrong
        return get_model_class(model_type) if model_type in list_models() else None
    if "/" in known.model:
        return None
    return get_model_class(known.model)


@contextlib.contextmanager
def plain_warnings() -> Iterator[None]:
    """hub-models' own warnings as one ``warning: ...`` line each, once per message (Python would print the
    source line that raised it, once per call site); other warnings as Python shows them."""
    shown: set[str] = set()
    python_shows = warnings.showwarning

    def show(message: Any, category: type[Warning], *where: Any, **kwargs: Any) -> None:
        if not issubclass(category, HubModelsWarning):
            python_shows(message, category, *where, **kwargs)
        elif str(message) not in shown:
            shown.add(str(message))
            print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = python_shows


def main(argv: list[str] | None = None) -> int:
    with plain_warnings():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    try:
        command = next((a for a in argv if not a.startswith("-")), None)
        if command != "generate":
            args = build_parser(command=command).parse_args(argv)
            return HANDLERS[args.command](args)
        model_cls = _model_for_generate(argv)
        args, unknown = build_parser(model_cls, command).parse_known_args(argv)
        if args.help:
            args.generate_parser.print_help()
            return 0
        if not args.model:
            args.generate_parser.error("the following arguments are required: model")
        extra = {k.partition(":")[2]: v for k, v in vars(args).items() if k.startswith("input:") and v is not None}
        return cmd_generate(args, {**extra, **options_from(unknown)}, model_cls)
    except HubModelsError as exc:
        print(f"error: {exc.cli}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


HANDLERS = {
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


if __name__ == "__main__":
    sys.exit(main())

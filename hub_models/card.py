"""Model cards: YAML front matter (huggingface_hub ``ModelCardData``) plus a body built from the plugin's
declared ``card`` info, its measured metrics and the checkpoint's provenance. No per-model code.

Evaluation results go to the Hub in both formats its parsers read: the ``.eval_results/*.yaml`` files
(``huggingface_hub.EvalResultEntry``; what model pages render today) and the legacy ``model-index`` in the
front matter. Only the model's own numbers are results: a metric declared ``reference=True`` (a property of the
data, such as real-vs-real distance) appears in the card's table for scale, never as a result.

``python -m hub_models.hub`` rewrites the card (and config.json) of every local checkpoint from its config.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import EvalResult, EvalResultEntry, ModelCard, ModelCardData

from .locations import CURVE_NAME, CURVE_PICTURE, RECIPE_NAME, distribution, hub_repo_id, recipe_path
from .spec import primary_metric
from .utils import atomic_path

if TYPE_CHECKING:
    from .contract import GenerativeModel

EVAL_RESULTS_NAME = ".eval_results/hub-models.yaml"

TEMPLATE = """---
{{ card_data }}
---

# {{ model_id }}

{{ summary }}

![samples](sample.png)

*Samples from seed 0 (`hub-models generate {{ model_id }} --seed 0 -n 64 -o sample.png`).*

## Use

```bash
pip install {{ package }}
hub-models generate {{ model_id }} --weights {{ repo_id }} -n 16 --seed 0 -o samples.png
```

```python
import hub_models

model = hub_models.load("{{ repo_id }}")  # the plugin comes from config.json's model_type
samples = model.generate(16, seed=0{{ example_inputs }})
```

## Metrics

{{ metrics_table }}

## Training

{{ training }}
{% if source or notes %}
## Source

{{ source }}

{{ notes }}
{% endif %}{% if limits %}
## Limits

{{ limits }}
{% endif %}
## Licence

{{ licence }}
"""


class AtomicModelCard(ModelCard):
    """A ModelCard whose ``save`` replaces the file in one rename (``save_pretrained`` calls it)."""

    def save(self, filepath: str | Path) -> None:
        with atomic_path(filepath) as tmp:
            tmp.write_text(str(self), encoding="utf-8", newline="")


def _results(model: GenerativeModel) -> list[tuple[Any, float]]:
    """(metric, value) of the model's own measured numbers (no reference metrics, nothing unmeasured)."""
    values = model.metric_values or {}
    return [
        (m, float(values[m.key]))
        for m in model.metrics
        if not m.reference and isinstance(values.get(m.key), int | float) and not isinstance(values[m.key], bool)
    ]


def _shown(value: Any, goal: float | None = None) -> str:
    """A measured value as a table cell: 4 significant digits, more where 4 would show a value that misses or
    beats its ``goal`` by a hair as the goal itself (100.035 as "100.03", not "100"); per-class values as
    "key: value" pairs."""
    if value is None:
        return "not measured"
    if isinstance(value, float):
        digits = 4
        while goal is not None and value != goal and float(f"{value:.{digits}g}") == goal and digits < 17:
            digits += 1
        return f"{value:.{digits}g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return str(value)


def _metrics_table(model: GenerativeModel) -> str:
    values = model.metric_values or {}
    rows = ["| metric | value | goal | protocol |", "|---|---|---|---|"]
    for metric in model.metrics:
        value = values.get(metric.key)
        shown = _shown(value, metric.goal)
        goal = "" if metric.goal is None else ("≥ " if metric.higher_is_better else "≤ ") + f"{metric.goal:g}"
        name = f"{metric.name} (reference, not a result of the model)" if metric.reference else metric.name
        rows.append(f"| {name} | {shown} | {goal} | {metric.protocol} |")
    if len(rows) == 2:
        return "This model declares no metrics."
    command = eval_command(model)
    if command:
        rows.append("")
        rows.append(f"Measured with `{command}`.")
    return "\n".join(rows)


def _data_argument(model: GenerativeModel) -> str:
    """The ``--data`` placeholder of a model whose data set hub-models cannot download (e.g. CELEBA64_DIR), or ""."""
    return next((metric.data for metric in model.metrics if metric.data), "")


def _curve_lines(model: GenerativeModel) -> list[str]:
    """The training curve under the card's Training heading: the picture (``curve.png`` beside the card, a link
    that works on the Hub and on GitHub) and how its points were measured, or why there is none."""
    rows = getattr(model, "training_curve", None) or []
    metric = primary_metric(model)
    if not rows or metric is None or not any(metric.key in row for row in rows):
        if not model.provenance:
            return []
        return ["No training curve was recorded for this checkpoint: its run did not measure itself as it trained."]
    counts = sorted({row["num_samples"] for row in rows if isinstance(row.get("num_samples"), int)})
    samples = f" on {counts[0]:,} samples" if len(counts) == 1 else ""
    return [
        "",
        f"![{metric.name} during training, by optimiser step]({CURVE_PICTURE})",
        "",
        f"*The {metric.name} of the exported model{samples}, measured {len(rows)} times during training (each "
        f"evaluation, with every number it measured, is a line of [`{CURVE_NAME}`]({CURVE_NAME})); the ringed "
        "point is the best.*",
        "",
    ]


def eval_command(model: GenerativeModel) -> str | None:
    """The command that measured the recorded metrics, from the declarations (None when nothing is measured):
    ``--data`` when a declared metric needs a data set named on the command line, ``--num-samples`` as recorded."""
    values = model.metric_values or {}
    if not any(metric.key in values for metric in model.metrics):
        return None
    if getattr(model, "measured_by", None):  # not a `hub-models eval` model (the MNIST judge)
        return model.measured_by
    parts = ["hub-models", "eval", model.model_id]
    data = _data_argument(model)
    if data:
        parts += ["--data", data]
    if "num_samples" in values:
        parts += ["--num-samples", str(values["num_samples"])]
    return " ".join(parts)


# Provenance keys that describe the machine a model was trained on rather than the model (kept out of the
# published config.json and card): data locations are local paths.
MACHINE_LOCAL = ("data_root",)
# Engine settings that say how one invocation ran, not what it computed: the same run is reproduced without them.
INVOCATION_ONLY = ("resume", "progress", "dry_run", "dry_run_steps")
# The same on the command line, and where the run was written: `--out DIR`, `--resume`, `--[no-]progress`,
# `--dry-run`, `--dry-run-steps N`.
INVOCATION_FLAGS = r"\s--(?:no-progress|progress|resume|dry-run)(?=\s|$)|\s--(?:out|dry-run-steps)(?:=|\s+)\S+"


def public_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    """Provenance that reproduces the run and nothing else: no machine-local paths (no data root, no ``--data
    PATH`` in the command: the data set is named by ``dataset``, and `hub-models train` finds it in
    ``$HUB_MODELS_DATA/<dataset>`` without the flag) and no invocation-only settings (``resume``, ``progress``,
    ``dry_run*``)."""
    public = {key: value for key, value in (provenance or {}).items() if key not in MACHINE_LOCAL}
    if isinstance(public.get("train_settings"), dict):
        settings = public["train_settings"]
        public["train_settings"] = {key: value for key, value in settings.items() if key not in INVOCATION_ONLY}
    if isinstance(public.get("command"), str):
        command = re.sub(r"\s--data(?:=|\s+)\S+", "", public["command"])
        command = re.sub(r"\bHUB_MODELS_DATA=\S+\s+", "", command)
        command = re.sub(INVOCATION_FLAGS, "", command)
        public["command"] = re.sub(r"(?<=\s)/\S*/(?=[^/\s]+)", "", command)  # absolute paths: the file name only
    return public


def _training_section(model: GenerativeModel, repo_id: str, recipe: bool) -> str:
    prov = public_provenance(model.provenance or {})
    if not prov:
        return "No training provenance recorded (weights not produced by `hub-models train`)."
    lines = []
    if prov.get("command"):
        lines.append(_reproduce_line(model, prov["command"]))
    if recipe:
        url = f"https://huggingface.co/{repo_id}/blob/main/{RECIPE_NAME}"
        lines.append(
            f"The recipe is [`{RECIPE_NAME}`]({url}) in this repository: what `hub-models train {model.model_id}` "
            "trains when given no `--config`."
        )
    lines += _curve_lines(model)
    keys = ("dataset", "steps", "epochs", "seed", "device", "git_revision", "finished")
    lines += [f"- {key}: {prov[key]}" for key in keys if prov.get(key) is not None]
    if prov.get("train_settings"):
        lines.append(f"- engine settings: `{json.dumps(prov['train_settings'], sort_keys=True)}`")
    if prov.get("versions"):
        lines.append(f"- library versions: `{json.dumps(prov['versions'], sort_keys=True)}`")
    return "\n".join(lines)


def _reproduce_line(model: GenerativeModel, command: str) -> str:
    """The recorded command as one that runs as written wherever the model's package is installed: the packaged
    recipe (``--config train/<id>.toml`` in hub-models' checkout) is what ``train`` reads by default, and a data set
    hub-models cannot download is named by its ``--data`` placeholder."""
    if recipe_path(type(model)) is not None:
        command = re.sub(rf"\s--config(?:=|\s+)train/{re.escape(model.model_id)}\.toml(?=\s|$)", "", command)
    data = _data_argument(model)
    if data and not re.search(r"\s--data\b", command):
        return (
            f"Reproduce with `{command} --data {data}` (`{data}`: your copy of the data set, which hub-models does "
            "not download)."
        )
    return f"Reproduce with `{command}`."


def _licence(model: GenerativeModel) -> str:
    info = model.card_info()
    if info.license_link:
        name = info.license_name or info.license
        return f"Weights: `{info.license}` ({name}, {info.license_link}). Code: MIT (the hub-models package)."
    return f"Weights: `{info.license}`. Code: MIT (the hub-models package)."


def eval_result_entries(model: GenerativeModel) -> list[EvalResultEntry]:
    """The model's results in the Hub's ``.eval_results`` format (one entry per metric, on its first data set)."""
    datasets = model.card_info().datasets
    if not datasets:
        return []
    return [
        EvalResultEntry(
            dataset_id=datasets[0],
            task_id=metric.key,
            value=value,
            notes=f"{metric.name}; {metric.protocol}",
        )
        for metric, value in _results(model)
    ]


def eval_results_yaml(model: GenerativeModel) -> str | None:
    """The ``.eval_results/hub-models.yaml`` file, or None when there is nothing to report."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    entries = eval_result_entries(model)
    dumped = eval_result_entries_to_yaml(entries)
    return yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True, width=10**6) if entries else None


def build_card(model: GenerativeModel, repo_id: str | None = None, recipe: bool | None = None) -> ModelCard:
    """The card of ``model`` as published at ``repo_id`` (default: the model's own Hub repo); ``recipe``: whether
    the repo holds its training recipe (default: whether the plugin has one, which ``publish`` uploads)."""
    if recipe is None:
        recipe = recipe_path(type(model)) is not None
    info = model.card_info()
    repo_id = repo_id or hub_repo_id(type(model))
    # model-index needs a data set; a model with no Hub data set (a 2-D toy) names its synthetic target instead
    dataset = info.datasets[0] if info.datasets else None
    eval_results = [
        EvalResult(
            task_type=info.pipeline_tag,
            dataset_type=dataset or "custom",
            dataset_name=dataset or f"synthetic target of {model.model_id}",
            metric_type=metric.key,
            metric_name=metric.name,
            metric_value=value,
            metric_config=metric.protocol,
        )
        for metric, value in _results(model)
    ]
    data = ModelCardData(
        library_name="hub-models",
        license=info.license,
        license_name=info.license_name,
        license_link=info.license_link,
        tags=sorted({"hub-models", "pytorch", "safetensors", *info.tags}),
        pipeline_tag=info.pipeline_tag,
        datasets=list(info.datasets) or None,
        model_name=model.model_id,
        eval_results=eval_results or None,
    )
    example = next((spec for spec in model.inputs), None)
    example_inputs = ""
    if example:
        # double quotes for strings, as ruff format writes Python (json.dumps gives a valid Python str literal)
        value = json.dumps(example.default) if isinstance(example.default, str) else repr(example.default)
        example_inputs = f", {example.name}={value}"
    return AtomicModelCard.from_template(
        data,
        template_str=info.template or TEMPLATE,
        model_id=model.model_id,
        repo_id=repo_id,
        package=distribution(model.model_id)[0],
        summary=info.summary,
        example_inputs=example_inputs,
        metrics_table=_metrics_table(model),
        training=_training_section(model, repo_id, recipe),
        licence=_licence(model),
        source=info.source or "",
        notes=info.notes or "",
        limits=info.limits or "",
    )

"""Model cards: YAML front matter (huggingface_hub ``ModelCardData``) plus a body built from the plugin's
declared ``card`` info, its measured metrics and the checkpoint's provenance. No per-model code."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from huggingface_hub import EvalResult, ModelCard, ModelCardData

if TYPE_CHECKING:
    from .contract import GenerativeModel

TEMPLATE = """---
{{ card_data }}
---

# {{ model_id }}

{{ summary }}

![samples](sample.png)

*Samples from seed 0 (`hub-models generate {{ model_id }} --seed 0 -n 64 -o sample.png`).*

## Use

```bash
pip install hub-models
hub-models generate {{ model_id }} --weights {{ repo_ref }} -n 16 --seed 0 -o samples.png
```

```python
import hub_models

model = hub_models.load("{{ model_id }}", weights="{{ repo_ref }}")
samples = model.generate(16, seed=0{{ example_inputs }})
```

## Metrics

{{ metrics_table }}

## Training

{{ training }}

## Source and notes

{{ source }}

{{ notes }}
"""


def _metrics_table(model: GenerativeModel) -> str:
    values = model.metric_values or {}
    rows = ["| metric | value | goal | protocol |", "|---|---|---|---|"]
    for metric in model.metrics:
        value = values.get(metric.key)
        shown = "not measured" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        goal = "" if metric.goal is None else ("≥ " if metric.higher_is_better else "≤ ") + f"{metric.goal:g}"
        rows.append(f"| {metric.name} | {shown} | {goal} | {metric.protocol} |")
    if len(rows) == 2:
        return "This model declares no metrics."
    extra = values.get("eval_command")
    if extra:
        rows.append("")
        rows.append(f"Measured with `{extra}`.")
    return "\n".join(rows)


def _training_section(model: GenerativeModel) -> str:
    prov = model.provenance or {}
    if not prov:
        return "No training provenance recorded (weights not produced by `hub-models train`)."
    lines = []
    if prov.get("command"):
        lines.append(f"Reproduce with `{prov['command']}`.")
    keys = ("dataset", "steps", "epochs", "seed", "device", "git_revision", "finished")
    lines += [f"- {key}: {prov[key]}" for key in keys if prov.get(key) is not None]
    if prov.get("train_settings"):
        lines.append(f"- engine settings: `{json.dumps(prov['train_settings'], sort_keys=True)}`")
    if prov.get("versions"):
        lines.append(f"- library versions: `{json.dumps(prov['versions'], sort_keys=True)}`")
    return "\n".join(lines)


def build_card(model: GenerativeModel, repo_id: str | None = None) -> ModelCard:
    info = model.card
    eval_results = []
    for metric in model.metrics:
        value = (model.metric_values or {}).get(metric.key)
        if isinstance(value, int | float):
            eval_results.append(
                EvalResult(
                    task_type=info.pipeline_tag,
                    dataset_type=(info.datasets[0] if info.datasets else "custom"),
                    dataset_name=(info.datasets[0] if info.datasets else "custom"),
                    metric_type=metric.key,
                    metric_name=metric.name,
                    metric_value=float(value),
                    metric_config=metric.protocol,
                )
            )
    data = ModelCardData(
        library_name="hub-models",
        license=info.license,
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
    return ModelCard.from_template(
        data,
        template_str=TEMPLATE,
        model_id=model.model_id,
        repo_ref=repo_id or f"<org>/{model.model_id}",
        summary=info.summary,
        example_inputs=example_inputs,
        metrics_table=_metrics_table(model),
        training=_training_section(model),
        source=info.source or "",
        notes=info.notes or "",
    )

"""What every benchmark stores beside its numbers: the machine that measured them, and the JSON file itself.

A ratio such as "the training step runs at 72% of the bf16 matrix-multiply rate" depends on the processor: a CPU
with AMX tiles multiplies bf16 matrices several times faster than one with AVX-512 BF16 only, while convolutions and
elementwise passes gain less. So each result names the CPU model, its bf16-related instruction sets and the load.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

# the instruction-set flags (/proc/cpuinfo) that decide how fast bf16 and int8 products run on x86 CPUs
MATRIX_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def machine() -> dict[str, Any]:
    """The processor (model name and matrix-related flags), its logical CPUs, Python and torch, and the load now."""
    cpuinfo = Path("/proc/cpuinfo")  # Linux; elsewhere the model is what platform knows and no flags are listed
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    torch = sys.modules.get("torch")  # only when the benchmark imported it: the CLI timings must not pay for it
    return {
        "cpu": model,
        "cpu_flags": [flag for flag in MATRIX_FLAGS if flag in flags],
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        **({"torch": torch.__version__} if torch is not None else {}),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(result: dict[str, Any], out: Path, show: dict[str, Any] | None = None) -> None:
    """Add the machine (``machine()``, at the end of the run) to ``result``, write it to ``out`` as JSON through a
    temporary file and a rename (an interrupted run leaves the previous file whole), and print ``show`` (default:
    the whole result)."""
    result = {**result, "machine": machine()}
    text = json.dumps(result, indent=2)
    print(text if show is None else json.dumps(show, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(out)

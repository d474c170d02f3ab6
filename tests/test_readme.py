"""The README's promises: the plugin example works as printed, and the commands it names exist."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from hub_models.testing import check_plugin

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_plugin_guide_example_passes_the_contract_helper(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    source = next(b for b in blocks if "class SpiralGAN" in b)
    module = types.ModuleType("my_models_spiral")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "README.md", "exec"), module.__dict__)
        check_plugin(module.SpiralGAN, tmp_path, train=True)
    finally:
        del sys.modules[module.__name__]


def test_readme_test_command_is_what_ci_runs():
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, flags=re.M) and re.search(r"^demo:", makefile, flags=re.M)
    assert "HF_HUB_OFFLINE=1" in makefile

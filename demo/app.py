"""Hugging Face Space entry point (app_file in the README front matter): the hub-models demo.

Run locally with `python demo/app.py` or `hub-models demo`. Weights: bundled by default; pick others per model
with HUB_MODELS_WEIGHTS_<MODEL_ID>=org/name[@revision] (e.g. HUB_MODELS_WEIGHTS_DCGAN_FACES) or --weights.
"""

import sys
from pathlib import Path

try:
    import hub_models  # noqa: F401 - installed by requirements.txt on a Space
except ImportError:  # a plain checkout: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_models.cli import main

if __name__ == "__main__":
    # the same options as `hub-models demo` (one parser, in the CLI, which starts hub_models.app.launch)
    sys.exit(main(["demo", *sys.argv[1:]]))

"""The project's own model plugins, one file each.

They are registered as entry points in pyproject.toml like any third-party plugin. ``BUILTIN_MODELS`` is the same
table (a test keeps the two equal) for a plain source checkout that was never pip-installed, where no entry-point
metadata exists; it lives in :mod:`hub_models.locations`, below the registry and the weights code that read it.
"""

from ..locations import BUILTIN_MODELS

__all__ = ["BUILTIN_MODELS"]

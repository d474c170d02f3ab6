"""The project's own model plugins, one file each, and the small model-agnostic helpers they share.

They are registered as entry points in pyproject.toml like any third-party plugin (and listed in
``hub_models.locations.BUILTIN_MODELS`` for a source checkout that was never pip-installed).
"""

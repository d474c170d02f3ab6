"""The project's own model plugins, one file each. They are registered as entry points in pyproject.toml."""

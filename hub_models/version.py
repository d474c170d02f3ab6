"""The package version (``hub_models.__version__``), in a leaf module so that no module inside the package has to
import the package's ``__init__``, which imports everything."""

__version__ = "0.1.0"

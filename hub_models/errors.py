"""User-facing errors.

Anything a user can cause (a bad weights reference, a missing data set, a label out of range) raises
:class:`HubModelsError` with a one-line message that names the problem and the fix. The CLI prints it as
``error: ...`` and exits with status 2; the demo shows it as a ``gr.Error``. Everything else is a bug.
"""

from __future__ import annotations


class HubModelsError(Exception):
    """An error caused by user input, with a message meant to be read by that user."""


class WeightsError(HubModelsError):
    """Weights that cannot be found, read or matched to the model."""


class DataError(HubModelsError):
    """A data set that is missing or malformed."""

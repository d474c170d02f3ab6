"""User-facing errors.

Anything a user can cause (a bad weights reference, a missing data set, a label out of range) raises
:class:`HubModelsError` with a one-line message that names the problem and the fix. The CLI prints it as
``error: ...`` and exits with status 2; the demo shows it as a ``gr.Error``. Everything else is a bug.

A fix is worded for whoever reads it: ``str(error)`` speaks Python (``pass weights=DIR``), ``error.cli`` the
command line (``pass --weights DIR``); :meth:`HubModelsError.worded` builds both from one template. docs/errors.md
lists every message and what to do.
"""

from __future__ import annotations


class HubModelsError(Exception):
    """An error caused by user input, with a message meant to be read by that user."""

    def __init__(self, message: str, *, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli = message if cli is None else cli  # the same message in the command line's terms

    @classmethod
    def worded(cls, template: str, **terms: tuple[str, str]) -> HubModelsError:
        """``template`` with each ``{name}`` replaced by ``terms[name]``: (Python wording, CLI wording)."""
        python = template.format(**{name: pair[0] for name, pair in terms.items()})
        return cls(python, cli=template.format(**{name: pair[1] for name, pair in terms.items()}))


class WeightsError(HubModelsError):
    """Weights that cannot be found, read or matched to the model."""


class DataError(HubModelsError):
    """A data set that is missing or malformed."""

"""User-facing errors.

Anything a user can cause (a bad weights reference, a missing data set, a label out of range) raises
:class:`HubModelsError` with a one-line message that names the problem and the fix. The CLI prints it as
``error: ...`` and exits with status 2; the demo shows it as a ``gr.Error``. Everything else is a bug.

A fix is worded for whoever reads it: ``str(error)`` speaks Python (``pass weights=DIR``), ``error.cli`` the
command line (``pass --weights DIR``), ``error.demo`` the operator of the demo app, whose knobs are its own
(``--weights MODEL=DIR``, ``HUB_MODELS_WEIGHTS_<ID>``; the command line's wording where no other is given);
:meth:`HubModelsError.worded` builds them from one template. docs/errors.md lists every message and what to do.
"""

from __future__ import annotations


class HubModelsError(Exception):
    """An error caused by user input, with a message meant to be read by that user."""

    def __init__(self, message: str, *, cli: str | None = None, demo: str | None = None) -> None:
        super().__init__(message)
        self.cli = message if cli is None else cli  # the same message in the command line's terms
        self.demo = self.cli if demo is None else demo  # ... and in the demo's (its options and environment)

    @classmethod
    def worded(cls, template: str, **terms: tuple[str, ...]) -> HubModelsError:
        """``template`` with each ``{name}`` replaced by ``terms[name]``: (Python wording, CLI wording[, demo
        wording]; the demo's is the CLI's when not given)."""

        def say(which: int) -> str:
            return template.format(**{name: words[min(which, len(words) - 1)] for name, words in terms.items()})

        return cls(say(0), cli=say(1), demo=say(2))


class HubModelsWarning(UserWarning):
    """Something the user can fix that does not stop the work (two packages register the same model id, say).
    The CLI prints it as one ``warning: ...`` line, once; ``warnings.filterwarnings("error", category=...)``
    turns it into an error."""


class WeightsError(HubModelsError):
    """Weights that cannot be found, read or matched to the model."""


class DataError(HubModelsError):
    """A data set that is missing or malformed."""

"""Exceptions a user of the pipeline can catch.

Every problem caused by what the user gave us (a portrait, an id, an option) is an
``InputError``: a ``ValueError`` whose message names the problem and the fix. The CLI turns
it into a one-line message and exit code 2.
"""


class InputError(ValueError):
    """Bad input: the message says what is wrong and how to fix it."""


class PortraitError(InputError):
    """The portrait could not be fetched, decoded or accepted."""


class CatalogError(InputError):
    """A prompt catalog file is malformed."""


class ConfigurationError(InputError):
    """A setting or environment variable holds a value the pipeline cannot use."""

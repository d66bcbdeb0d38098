"""Exceptions a user of the pipeline can catch.

Every problem caused by what the user gave us (a portrait, an id, an option) is an
``InputError``: a ``ValueError`` whose message names the problem and the fix. The CLI turns
it into a one-line message and exit code 2. The other errors here are not the user's input:
storage that does not answer, another process making the same actor, a stop signal; a rerun
continues from the shot journal after each of them.
"""

import signal


class InputError(ValueError):
    """Bad input: the message says what is wrong and how to fix it."""


class PortraitError(InputError):
    """The portrait could not be fetched, decoded or accepted."""


class CatalogError(InputError):
    """A prompt catalog file is malformed."""


class ConfigurationError(InputError):
    """A setting or environment variable holds a value the pipeline cannot use."""


class CredentialsRefused(ConfigurationError):
    """The image provider refused the API token (HTTP 401 or 403): no run can create anything
    with it, so the run stops at the first refusal."""


class StateError(InputError):
    """A pipeline state file (registration, shot record, journal entry) is unreadable; the
    message names the file and the fix."""


class StorageUnavailable(Exception):
    """Storage did not answer (an outage, a full disk). Paid images wait in the local spool, and
    a rerun once storage answers stores them at no cost."""


class ActorBusy(Exception):
    """Another process holds the actor's lease: it is making the actor's set right now."""


class Interrupted(Exception):
    """A SIGINT or SIGTERM stopped the work; the journal is consistent and a rerun resumes."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

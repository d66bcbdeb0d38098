"""Every exception the pipeline raises on purpose derives from ``PipelineError``, in one of these
branches, each of which the CLI turns into one line and its exit code:

- ``InputError`` (exit 2): what the user gave us (a portrait, an id, an option, a setting, a
  token) is unusable; the message names the problem and the fix. Nothing already made is touched.
- ``StateError`` (exit 3): a file of ours (a registration, a shot record) is unreadable, though
  the user's input was fine; the message names the file and the fix.
- ``Unavailable`` (exit 1, with the JSON result): something we depend on did not answer (storage,
  a full disk); paid images wait in the spool and a rerun continues at no cost.
- ``ActorBusy`` (exit 75): another maker holds the actor.
- ``Interrupted`` (exit 130/143): a stop signal; the journal is consistent and a rerun resumes.
- ``NotMadeYet``: an asset was asked for before the one it is made from (Dagster says which).
- ``TrainingFailed`` (exit 1): a LoRA training ended without a model; it is recorded with its
  error and cost, and the next ask trains again.

Errors that stay inside generation (a shot's failure, creates closed for a run) derive from the
root too, where they are defined.
"""

import signal


class PipelineError(Exception):
    """The root of the package's errors."""


class InputError(PipelineError, ValueError):
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


class StateError(PipelineError):
    """A pipeline state file (registration, shot record) is unreadable; the message names the
    file and the fix."""


class NotMadeYet(PipelineError, LookupError):
    """What a stage reads was not made yet; the message names what to make first."""


class Unavailable(PipelineError):
    """A service the pipeline depends on did not answer; a rerun continues at no cost."""


class StorageUnavailable(Unavailable):
    """Storage did not answer (an outage, a full disk). Paid images wait in the local spool, and
    a rerun once storage answers stores them at no cost."""


class TrainingFailed(PipelineError):
    """A LoRA training failed, was canceled or ran past its deadline: recorded with its error and
    cost; the next ask starts a new one."""


class ActorBusy(PipelineError):
    """Another process holds the actor's lease: it is making the actor's set right now."""


class Interrupted(PipelineError):
    """A SIGINT or SIGTERM stopped the work; the journal is consistent and a rerun resumes."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

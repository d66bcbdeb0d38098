"""The Dagster instance the CLI and the Python API run on: the one ``make ui`` serves."""

import os
from pathlib import Path

import dagster as dg

from actor_pipeline.defs.liveness import fail_orphaned_runs


def open_instance(folder: str | os.PathLike[str]) -> dg.DagsterInstance:
    """The instance in ``folder`` (``PipelineSettings.resolved_instance_dir``: ``$DAGSTER_HOME``
    if set, else ``<state folder>/dagster``, beside the shot journal, off ``--out``, which may
    fill up): the folder ``make ui`` serves, so the UI shows the runs and sets the CLI made. Runs
    that an earlier command left STARTED when its process died are marked failed."""
    home = Path(folder).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    # The folder's dagster.yaml (``make ui`` puts deploy/dagster.yaml there) applies, with
    # _CLI_INSTANCE on top. Not DagsterInstance.get() or from_config(): they take no overrides,
    # and the UI's compute-log capture must stay out of the CLI. local_temp(tempdir=...) is
    # Dagster's public way to open a folder with overrides; despite its name the instance
    # persists in that folder.
    instance = dg.DagsterInstance.local_temp(tempdir=str(home), overrides=_CLI_INSTANCE)
    fail_orphaned_runs(instance)
    return instance


# No telemetry from an instance the user never configured (and no network to send it to), and no
# compute-log capture, even where dagster.yaml asks for it: its helper processes share the CLI's
# process group, so a Ctrl-C would make them print tracebacks, and the CLI's progress goes to
# the terminal anyway. The UI's runs keep their compute logs (run workers read dagster.yaml).
_CLI_INSTANCE = {
    "telemetry": {"enabled": False},
    "compute_logs": {"module": "dagster.core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"},
}



"""The inbox resource: where the inbox sensor looks for portraits."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from actor_pipeline.defs.resources import s3_client
from actor_pipeline.inbox import InboxSource, open_inbox
from actor_pipeline.settings import EnvSettings
from actor_pipeline.storage.s3_settings import connection_from_env

DEFAULT_INBOX = "inbox"


class InboxResource(dg.ConfigurableResource):
    """A local folder or ``s3://bucket/prefix`` holding ``{user_id}/{actor_id}.jpg`` portraits
    and optional ``{actor_id}.json`` sidecars."""

    location: str = Field(DEFAULT_INBOX, description="the folder or s3://bucket/prefix watched (ACTOR_PIPELINE_INBOX)")
    settle_seconds: float = 10.0  # a bad file is reported once it has been unchanged this long
    max_per_tick: int = 20  # portraits registered per tick; more wait for the next one

    @classmethod
    def from_env(cls) -> "InboxResource":
        """``$ACTOR_PIPELINE_INBOX``, default ``./inbox``; a relative folder is resolved against
        the working directory now, so the UI shows the folder actually watched."""
        location = EnvSettings.load().inbox or DEFAULT_INBOX
        return cls(location=location if location.startswith("s3://") else str(Path(location).resolve()))

    def open(self) -> InboxSource:
        # Credentials and endpoint from the same variables as S3 storage.
        return open_inbox(self.location, lambda: s3_client(connection_from_env()))

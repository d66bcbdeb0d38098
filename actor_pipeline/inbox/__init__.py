"""The inbox: portraits dropped in a folder or an S3 prefix become registered actors.

Plain Python; ``actor_pipeline.defs.sensors`` runs ``take_in`` on every sensor tick.
"""

from actor_pipeline.inbox.cursor import InboxCursor
from actor_pipeline.inbox.intake import Arrived, Intake, take_in
from actor_pipeline.inbox.model import InboxEntry, InboxItem, Rejected, Sidecar, group_entries, parse_sidecar
from actor_pipeline.inbox.sources import FolderInbox, InboxSource, S3Inbox, open_inbox

__all__ = [
    "Arrived",
    "InboxCursor",
    "InboxEntry",
    "InboxItem",
    "InboxSource",
    "Intake",
    "FolderInbox",
    "Rejected",
    "S3Inbox",
    "Sidecar",
    "group_entries",
    "open_inbox",
    "parse_sidecar",
    "take_in",
]

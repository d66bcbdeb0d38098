"""What went wrong, in words a user can act on."""

import re

import httpx
from replicate.exceptions import ReplicateError

from actor_pipeline.generation.replicate.retry import http_status

# Replicate's wording for partner models is "The input or output was flagged as sensitive.
# Please try again with different inputs. (E005)", sometimes "potentially sensitive", shortened,
# prefixed ("ModelError: ") or followed by a request token; BFL's own API says "Content
# Moderated" or "Request Moderated". The exact text for flux-kontext-pro is not documented, so
# every marker counts.
_FLAGGED = re.compile(
    r"\bE005\b|flagged as (?:potentially )?sensitive|\b(?:content|request) moderated\b", re.IGNORECASE
)

_FIXES = {
    401: "set REPLICATE_API_TOKEN to a valid API token",
    402: "add credit to the Replicate account",
    403: "use an API token of an account allowed to run the model",
    404: "check the model name and REPLICATE_BASE_URL",
    422: "the model refused the input; check the Replicate settings",
    429: "lower creates_per_minute, or run fewer actors at once",
}


def is_content_flagged(error: str | None) -> bool:
    """Whether a failed prediction's ``error`` is the safety filter's (E005)."""
    return bool(error and _FLAGGED.search(error))


def describe(exc: BaseException) -> str:
    """One line naming what failed and, where there is one, the fix. Never includes request
    headers, so never the API token."""
    status = http_status(exc)
    if isinstance(exc, ReplicateError):
        # Validation details come as "- field: problem\n" lines: one line is kept.
        detail = " ".join((exc.detail or exc.title or "no details").split())
        text = f"Replicate answered HTTP {status}: {detail}"
    elif isinstance(exc, httpx.HTTPStatusError):
        text = f"HTTP {status} from {exc.request.url.host}"
    elif isinstance(exc, httpx.TransportError):
        text = f"{type(exc).__name__} talking to Replicate ({exc or 'connection lost'})"
    elif isinstance(exc, TimeoutError):
        text = "no answer from Replicate in time"
    else:
        text = f"{type(exc).__name__}: {exc}"
    fix = _FIXES.get(status) if status is not None else None
    return f"{text.rstrip('. ')} ({fix})" if fix else text

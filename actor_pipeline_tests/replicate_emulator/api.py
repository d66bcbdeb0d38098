"""The HTTP surface of the emulated API (replicate-api.md §6), over an ``Account``."""

import email.parser
import email.policy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from urllib.parse import urlencode

from actor_pipeline_tests.replicate_emulator.account import VERSION_ID, Account, Limit, Problem
from actor_pipeline_tests.replicate_emulator.flux import MODEL
from actor_pipeline_tests.replicate_emulator.trainings import LORA_MODEL


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Message  # case-insensitive
    body: bytes


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def handle_api(account: Account, request: Request) -> Reply:
    """Answer one API request. Raises ``Dropped`` when the connection is to be cut."""
    try:
        account.answer_or_fail()
        account.authorize(request.headers.get("Authorization"))
        for method, pattern, kind, route in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                limits = account.admit(kind)
                reply = route(account, request, *match.groups())
                reply.headers.update(limits)
                return reply
        raise Problem(404, "Not found", "The requested resource could not be found.")
    except Problem as problem:
        return _problem(problem)


def handle_delivery(account: Account, request: Request) -> Reply:
    """Serve an output file, as replicate.delivery does (no authentication needed)."""
    match = re.fullmatch(r"/([a-z0-9]+)/output\.(?:jpg|png)", request.path)
    try:
        if request.method != "GET" or not match:
            raise Problem(404, "Not found", "no such file")
        content_type, data = account.download(match.group(1))
    except Problem as problem:
        return Reply(problem.status, str(problem).encode(), "text/plain")
    return Reply(200, data, content_type)


def _create_for_model(account: Account, request: Request, owner: str, name: str) -> Reply:
    if f"{owner}/{name}" not in (MODEL, LORA_MODEL):
        raise Problem(404, "Not found", "The requested model does not exist (or perhaps you don't have permission)")
    return _created(account, request, _json_body(request), f"{owner}/{name}")


def _create_for_version(account: Account, request: Request) -> Reply:
    body = _json_body(request)
    if not isinstance(body, dict) or body.get("version") != VERSION_ID:
        raise Problem(
            422,
            "Invalid version or not permitted",
            "The specified version does not exist (or perhaps you don't have permission to use it?)",
        )
    return _created(account, request, body, MODEL)


def _created(account: Account, request: Request, body: object, model: str) -> Reply:
    wait_s = _wait_s(request.headers.get("Prefer"))
    prediction = account.create(model, body, wait_s)
    headers = {"Location": str(prediction["urls"]["get"])}  # type: ignore[index]
    if wait_s is not None:
        headers["Preference-Applied"] = "wait"
    return _json(201, prediction, headers)


def _list(account: Account, request: Request) -> Reply:
    bounds = {key: request.query[key] for key in ("created_after", "created_before") if key in request.query}
    try:
        after, before = (_moment(bounds[k]) if k in bounds else None for k in ("created_after", "created_before"))
        offset = int(request.query.get("cursor", "0"))
    except ValueError as exc:
        raise Problem(400, "Bad request", f"invalid query: {exc}") from exc
    results, following = account.list_predictions(after, before, offset)

    def page(at: int) -> str:
        return f"{account.api_base}/v1/predictions?{urlencode({**bounds, 'cursor': at})}"

    previous = page(max(0, offset - account.behaviour.page_size)) if offset else None
    return _json(
        200, {"next": page(following) if following is not None else None, "previous": previous, "results": results}
    )


def _get(account: Account, request: Request, prediction_id: str) -> Reply:
    return _json(200, account.poll(prediction_id))


def _cancel(account: Account, request: Request, prediction_id: str) -> Reply:
    return _json(200, account.cancel(prediction_id))


def _upload(account: Account, request: Request) -> Reply:
    parts = _multipart(request.headers.get("Content-Type", ""), request.body)
    if "content" not in parts:
        raise Problem(400, "Bad request", "multipart part 'content' is required")
    filename, content_type, data = parts["content"]
    metadata = json.loads(parts["metadata"][2] or b"{}") if "metadata" in parts else {}
    return _json(201, account.upload(filename or "file", content_type, data, metadata))


def _file(account: Account, request: Request, file_id: str) -> Reply:
    return _json(200, account.file(file_id))


def _files(account: Account, request: Request) -> Reply:
    return _json(200, {"next": None, "previous": None, "results": account.files()})


def _delete_file(account: Account, request: Request, file_id: str) -> Reply:
    account.delete_file(file_id)
    return Reply(204)


def _create_training(account: Account, request: Request, owner: str, name: str, version: str) -> Reply:
    return _json(201, account.create_training(owner, name, version, _json_body(request)))


def _list_trainings(account: Account, request: Request) -> Reply:
    try:
        offset = int(request.query.get("cursor", "0"))
    except ValueError as exc:
        raise Problem(400, "Bad request", f"invalid query: {exc}") from exc
    results, following = account.list_trainings(offset)

    def page(at: int) -> str:
        return f"{account.api_base}/v1/trainings?{urlencode({'cursor': at})}"

    previous = page(max(0, offset - account.behaviour.page_size)) if offset else None
    return _json(200, {"next": page(following) if following is not None else None, "previous": previous, "results": results})


def _get_training(account: Account, request: Request, training_id: str) -> Reply:
    return _json(200, account.training(training_id))


def _cancel_training(account: Account, request: Request, training_id: str) -> Reply:
    return _json(200, account.cancel_training(training_id))


def _create_model(account: Account, request: Request) -> Reply:
    return _json(201, account.create_model(_json_body(request)))


def _get_model(account: Account, request: Request, owner: str, name: str) -> Reply:
    return _json(200, account.model(owner, name))


def _account(account: Account, request: Request) -> Reply:
    return _json(200, account.current_account())


def _secret(account: Account, request: Request) -> Reply:
    return _json(200, {"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})


Route = Callable[..., Reply]
_ID = r"([a-z0-9]+)"
_FILE_ID = r"([A-Za-z0-9]+)"  # file ids have capitals (base64), prediction ids do not
_ROUTES: tuple[tuple[str, re.Pattern[str], Limit, Route], ...] = (
    ("POST", re.compile(r"/v1/models/([^/]+)/([^/]+)/predictions"), "create", _create_for_model),
    ("POST", re.compile(r"/v1/predictions"), "create", _create_for_version),
    ("GET", re.compile(r"/v1/predictions"), "read", _list),
    ("GET", re.compile(rf"/v1/predictions/{_ID}"), "read", _get),
    ("POST", re.compile(rf"/v1/predictions/{_ID}/cancel"), "read", _cancel),
    ("POST", re.compile(r"/v1/files"), "read", _upload),
    ("GET", re.compile(r"/v1/files"), "read", _files),
    ("GET", re.compile(rf"/v1/files/{_FILE_ID}"), "read", _file),
    ("DELETE", re.compile(rf"/v1/files/{_FILE_ID}"), "read", _delete_file),
    ("GET", re.compile(r"/v1/webhooks/default/secret"), "read", _secret),
    ("POST", re.compile(r"/v1/models/([^/]+)/([^/]+)/versions/([^/]+)/trainings"), "create", _create_training),
    ("GET", re.compile(r"/v1/trainings"), "read", _list_trainings),
    ("GET", re.compile(rf"/v1/trainings/{_ID}"), "read", _get_training),
    ("POST", re.compile(rf"/v1/trainings/{_ID}/cancel"), "read", _cancel_training),
    ("POST", re.compile(r"/v1/models"), "read", _create_model),
    ("GET", re.compile(r"/v1/models/([^/]+)/([^/]+)"), "read", _get_model),
    ("GET", re.compile(r"/v1/account"), "read", _account),
)


def _wait_s(prefer: str | None) -> float | None:
    """``Prefer: wait`` holds up to 60 s, ``wait=n`` n seconds (1-60); anything else: no wait."""
    match = re.fullmatch(r"\s*wait(?:\s*=\s*(\d+))?\s*", prefer or "")
    if not match:
        return None
    return float(min(60, max(1, int(match.group(1))))) if match.group(1) else 60.0


def _moment(text: str) -> datetime:
    """An ISO 8601 query value; one without an offset is read as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_body(request: Request) -> object:
    try:
        return json.loads(request.body or b"null")
    except ValueError as exc:
        raise Problem(400, "Bad request", f"the body is not JSON: {exc}") from exc


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, str, bytes]]:
    """Parts of a multipart/form-data body: name -> (filename, content type, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        raise Problem(400, "Bad request", "expected multipart/form-data")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts: dict[str, tuple[str | None, str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            parts[name] = (part.get_filename(), part.get_content_type(), payload if isinstance(payload, bytes) else b"")
    return parts


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), headers=headers or {})


def _problem(problem: Problem) -> Reply:
    if problem.status in (502, 504):  # from the gateway in front of the API: not JSON at all
        return Reply(problem.status, f"<html><body>{problem.status} Gateway error</body></html>".encode(), "text/html")
    return Reply(problem.status, json.dumps(problem.body).encode(), "application/problem+json", problem.headers)

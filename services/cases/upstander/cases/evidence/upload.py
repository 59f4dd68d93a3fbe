"""Reading an evidence upload (multipart/form-data) from the request as it streams in.

Starlette's form parser spools every file over 1 MiB to a temporary file on disk, in the
clear; evidence must never touch the disk unsealed. So the body is parsed here with
python-multipart directly, and the `file` part's bytes go straight to an `EvidenceWriter`,
which seals and stores them a chunk at a time: at most one chunk of the file is in memory,
and none of it reaches the disk unsealed. The route declares no body parameter, so FastAPI
reads nothing before the caller and the case are checked.

Errors are problems: 415 (not multipart, or a file type evidence may not have), 413 (too
large), 422 (unknown, missing, repeated or invalid fields, an empty file), 400 (a malformed
or cut-off body). No value from the body is ever logged or echoed back (field names are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from upstander.cases.evidence.files import media_type
from upstander.cases.evidence.schemas import EvidenceFieldsIn
from upstander.cases.problems import InvalidRequest
from upstander.kit.errors import BadRequest, UnsupportedMediaType

FILE_PART = "file"
FIELD_PARTS = frozenset(EvidenceFieldsIn.model_fields)
# A form field's raw size cap: the longest field (10,000 characters) in UTF-8, with room.
MAX_FIELD_BYTES = 64 * 1024
# One file and three fields; a few more parts are refused rather than parsed.
MAX_PARTS = 8
_MAX_NAME = 100


@dataclass(frozen=True)
class FormField:
    name: str
    value: str


@dataclass(frozen=True)
class FileStart:
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class FileData:
    data: bytes


@dataclass(frozen=True)
class FileEnd:
    pass


Event = FormField | FileStart | FileData | FileEnd


class FileSink(Protocol):
    """What receives the `file` part: an `EvidenceWriter` (see service.py)."""

    async def start(self, filename: str | None, declared_type: str | None) -> None: ...

    async def write(self, data: bytes) -> None: ...


def _field(name: str) -> str:
    return f"body.{name[:_MAX_NAME]}"


class _Collector:
    """python-multipart's callbacks, turned into events the async side handles after each
    write (callbacks are synchronous; storing a chunk is not)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ended = False
        self._parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._name = ""
        self._is_file = False
        self._data = bytearray()

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = ""
        self._is_file = False
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidRequest("body", f"At most {MAX_PARTS} parts.")
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw_name = options.get(b"name")
        if raw_name is None:
            raise BadRequest("A multipart part has no name.")
        self._name = raw_name.decode("utf-8", "replace")
        if self._name == FILE_PART:
            self._is_file = True
            raw_filename = options.get(b"filename")
            filename = raw_filename.decode("utf-8", "replace") if raw_filename else None
            declared = self._headers.get(b"content-type")
            self.events.append(
                FileStart(filename, declared.decode("latin-1") if declared is not None else None)
            )
        elif self._name not in FIELD_PARTS:
            raise InvalidRequest(_field(self._name), "Unknown field.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.events.append(FileData(data[start:end]))
            return
        if len(self._data) + (end - start) > MAX_FIELD_BYTES:
            raise InvalidRequest(_field(self._name), "Too long.")
        self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._is_file:
            self.events.append(FileEnd())
            return
        try:
            value = self._data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(_field(self._name), "Not valid UTF-8.") from None
        self.events.append(FormField(self._name, value))

    def on_end(self) -> None:
        self.ended = True


def _parser(request: Request, collector: _Collector) -> MultipartParser:
    content_type = request.headers.get("content-type", "")
    if media_type(content_type) != "multipart/form-data":
        raise UnsupportedMediaType(
            "Send evidence as multipart/form-data: a `file` part and `description`, `source` "
            "and `collected_at` fields."
        )
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary.")
    return MultipartParser(boundary, collector.callbacks())


async def read_evidence_form(request: Request, sink: FileSink) -> EvidenceFieldsIn:
    """Stream the body: the `file` part into `sink`, the fields into the returned model."""
    collector = _Collector()
    parser = _parser(request, collector)
    fields: dict[str, str] = {}
    file_state = "missing"
    try:
        async for message in request.stream():
            parser.write(message)
            events, collector.events = collector.events, []
            for event in events:
                if isinstance(event, FormField):
                    if event.name in fields:
                        raise InvalidRequest(_field(event.name), "Send this field once.")
                    fields[event.name] = event.value
                elif isinstance(event, FileStart):
                    if file_state != "missing":
                        raise InvalidRequest(_field(FILE_PART), "Send one file.")
                    file_state = "open"
                    await sink.start(event.filename, event.content_type)
                elif isinstance(event, FileData):
                    await sink.write(event.data)
                else:
                    file_state = "done"
    except FormParserError:
        raise BadRequest("The multipart body is malformed.") from None
    except ClientDisconnect:
        raise BadRequest("The upload was interrupted.") from None
    if not collector.ended or file_state == "open":
        raise BadRequest("The multipart body ended early.")
    errors: list[Any] = []
    if file_state == "missing":
        errors.append({"type": "missing", "loc": ("body", FILE_PART), "msg": "Field required"})
    try:
        form = EvidenceFieldsIn.model_validate(fields)
    except ValidationError as exc:
        # Without the inputs: error details must never carry what the handler wrote.
        errors += [
            {**error, "loc": ("body", *error["loc"])}
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
    if errors:
        raise RequestValidationError(errors)
    return form

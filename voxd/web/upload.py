"""A book uploaded through the page, into the inbox the way ``voxd add`` puts one there.

The body is parsed as it arrives (python-multipart's streaming parser) and the file part
written straight to a temp file in the inbox: nothing is held in memory, a body over the
cap is refused as soon as it passes it, and the daemon's watcher never sees half a file
(temp names are ignored, the finished file is renamed in). The client's file name is a
hint: only its last component is kept, cleaned of control characters and cut to fit, and
the type is the suffix voxd reads.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from ..files import fit_bytes, new_file_mode, new_temp, remove_temp, rename_into_place, sha256_file, unique_path
from ..ingest import READERS
from ..service.records import Job
from ..service.store import Store

#: Form fields other than the file (the CSRF token): a few, and short.
MAX_FIELDS = 8
MAX_FIELD_BYTES = 4096


class UploadRefused(Exception):
    """An upload that cannot be taken; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """What a multipart body held: the file (in a temp file in the inbox) and the small fields."""

    filename: str | None = None
    temp: Path | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


def clean_name(raw: str) -> str:
    """A file name from a client, made safe to create in the inbox: its last path component,
    no control or format characters, no leading dots, at most 200 bytes with its suffix kept."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if not name:
        return "upload"
    stem, dot, suffix = name.rpartition(".")
    if dot and stem and len(suffix) <= 16:
        return fit_bytes(stem, 200 - len(suffix.encode()) - 1).rstrip() + "." + suffix
    return fit_bytes(name, 200)


def _suffix_ok(name: str) -> bool:
    return Path(name).suffix.lower() in READERS


async def receive(chunks: AsyncIterator[bytes], content_type: str, inbox: Path, limit: int) -> Upload:
    """Stream a ``multipart/form-data`` body; its ``file`` part goes to a temp file in ``inbox``.

    Raises :class:`UploadRefused` (and leaves no temp file) for a body that is not a form,
    has no file, a file over ``limit`` bytes or of a type voxd does not read.
    """
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused(400, "send the book as multipart/form-data, in a field named 'file'")
    up = Upload()
    out: list[BinaryIO] = []
    headers: dict[bytes, bytes] = {}
    header = [b"", b""]
    part: dict[str, object] = {}

    def on_part_begin() -> None:
        headers.clear()
        part.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        headers[header[0].lower()] = header[1]
        header[0] = header[1] = b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        part["name"] = name
        if b"filename" in disp and name == "file":
            if up.temp is not None:
                raise UploadRefused(400, "send one book per upload")
            filename = clean_name(disp[b"filename"].decode("utf-8", "replace"))
            if not _suffix_ok(filename):
                raise UploadRefused(415, f"{filename}: voxd reads .epub, .pdf and .voxd.json files")
            up.filename = filename
            up.temp = new_temp(inbox / filename, mode=new_file_mode())
            out.append(up.temp.open("wb"))
            part["file"] = True
        else:
            if len(up.fields) >= MAX_FIELDS:
                raise UploadRefused(400, "too many form fields")
            part["value"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.get("file"):
            up.size += end - start
            if up.size > limit:
                raise UploadRefused(413, f"{up.filename} is larger than {limit / 2**20:g} MB "
                                    "([web] max_upload_mb)")
            out[0].write(data[start:end])
        elif "value" in part:
            value = part["value"] + data[start:end]  # type: ignore[operator]
            if len(value) > MAX_FIELD_BYTES:
                raise UploadRefused(400, f"form field {part['name']!r} is too long")
            part["value"] = value

    def on_part_end() -> None:
        if part.get("file"):
            out[0].close()
        elif "value" in part:
            up.fields[str(part["name"])] = part["value"].decode("utf-8", "replace")  # type: ignore[attr-defined]

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in chunks:
            await run_in_threadpool(parser.write, chunk)  # the file's writes off the event loop
        parser.finalize()
        if up.temp is None:
            raise UploadRefused(400, "no file in the upload: send it in a form field named 'file'")
        if up.size == 0:
            raise UploadRefused(400, f"{up.filename} is empty")
        if out and not out[0].closed:
            raise UploadRefused(400, "the upload ended before its file did")
    except UploadRefused:
        discard(up, out)
        raise
    except OSError as exc:  # the inbox's disk: full, gone, not writable
        discard(up, out)
        raise UploadRefused(507, f"{up.filename or 'the upload'} could not be written to the inbox: "
                            f"{exc.strerror or exc}") from None
    except Exception as exc:  # python-multipart's own errors: a malformed body
        discard(up, out)
        raise UploadRefused(400, f"the upload is not a well-formed form: {exc}") from None
    except BaseException:  # the client went away: nothing is left behind
        discard(up, out)
        raise
    return up


def discard(up: Upload, out: list[BinaryIO] | None = None) -> None:
    for handle in out or ():
        with contextlib.suppress(OSError):
            handle.close()
    if up.temp is not None:
        remove_temp(up.temp)
        up.temp = None


def queue(up: Upload, inbox: Path, store: Store) -> tuple[Job, bool]:
    """The uploaded file into the inbox as a job, as ``voxd add`` does: a book already
    queued (the same content) is that job, and the upload goes."""
    assert up.temp is not None and up.filename is not None
    digest = sha256_file(up.temp)
    existing = store.by_sha256(digest)
    if existing is not None:
        discard(up)
        return existing, False
    target = unique_path(inbox, up.filename)
    rename_into_place(up.temp, target)
    up.temp = None
    return store.put(digest, target)

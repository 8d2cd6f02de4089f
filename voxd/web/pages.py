"""The page's HTML: the queue, a book, the voices, the checks, and the login form.

Rendered on the server with Jinja2 (every string from a book is escaped by the template
engine, never marked safe) and usable without JavaScript: each button is a form that posts
and comes back. ``static/voxd.js`` adds what a script can: live progress from
``/api/events``, drag-and-drop upload with its progress, chapters enabled as they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .api import cancel, find_job, job_detail, job_json, retry
from .app import Refused, Web, client
from .auth import COOKIE, SESSION_SECONDS, safe_next
from .upload import UploadRefused, queue, receive

log = logging.getLogger(__name__)

#: How long ``voxd doctor`` and a voice preview may take before the page gives up on them.
DOCTOR_SECONDS = 180.0
PREVIEW_SECONDS = 60.0
PREVIEW_TEXT = "This is how I sound, reading your book."
#: A ``voxd doctor`` run is shown again for this long, and runs one at a time.
DOCTOR_FRESH_SECONDS = 30.0


def routes(web: Web) -> list[Route]:
    preview_lock, doctor_lock = asyncio.Lock(), asyncio.Lock()
    doctor_said: list[Any] = [float("-inf"), 0, ""]  # when, exit status, output

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        session = getattr(request.state, "session", None)
        return web.templates.TemplateResponse(request, name, {
            "web": web, "csrf": web.csrf_for(session), "said": request.query_params.get("said", "")[:500],
            "locked": bool(web.password), **context}, status_code=status)

    async def queue_page(request: Request) -> Response:
        jobs = [job_json(j) for j in reversed(await run_in_threadpool(web.store.jobs))]
        return page(request, "queue.html", jobs=jobs, limit=web.settings.web.max_upload_mb)

    async def job_page(request: Request) -> Response:
        job = find_job(web, request)
        return page(request, "job.html", job=await run_in_threadpool(job_detail, web, job))

    async def act(request: Request) -> Response:
        job = find_job(web, request)
        fields = await web.form_with_csrf(request)
        action = fields.get("action", "")
        if action in ("cancel", "purge"):
            said = await run_in_threadpool(cancel, web, job, purge=action == "purge")
        elif action == "retry":
            said = await run_in_threadpool(retry, web, job)
        elif action == "respeak":
            chunks = [int(n) for n in fields.get("chunks", "").split(",") if n.strip().isdigit()]
            said = await run_in_threadpool(retry, web, job, flagged=not chunks, chunks=chunks)
        else:
            raise Refused(400, f"no action {action[:40]!r}")
        return RedirectResponse(f"/jobs/{job.id}?said={quote(said)}", status_code=303)

    async def upload_form(request: Request) -> Response:
        inbox = web.settings.inbox_dir
        inbox.mkdir(parents=True, exist_ok=True)
        try:
            up = await receive(request.stream(), request.headers.get("content-type", ""), inbox,
                               int(web.settings.web.max_upload_mb * 2**20))
        except UploadRefused as exc:
            raise Refused(exc.status, str(exc)) from None
        job, created = await run_in_threadpool(queue, up, inbox, web.store)
        if created:
            web.wake()
        said = f"{up.filename}: queued as job {job.id}" if created else f"already job {job.id} ({job.status.value})"
        return RedirectResponse(f"/jobs/{job.id}?said={quote(said)}", status_code=303)

    async def login_page(request: Request) -> Response:
        if not web.password:
            return RedirectResponse("/", status_code=303)
        return web.templates.TemplateResponse(request, "login.html", {
            "web": web, "next": safe_next(request.query_params.get("next")), "locked": True, "said": ""})

    async def login(request: Request) -> Response:
        if not web.password:
            return RedirectResponse("/", status_code=303)
        form = await request.form(max_files=0, max_fields=5)
        target = safe_next(str(form.get("next") or "/"))
        address = client(request)

        def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
            return web.templates.TemplateResponse(request, "login.html", {
                "web": web, "next": target, "locked": True, "said": "", "error": error}, status_code=status,
                headers=headers)

        try:
            if not web.try_password(request, str(form.get("password") or "")):
                return again("That is not the password.", 401)
        except Refused as exc:  # too many wrong ones: this client waits
            return again(str(exc).capitalize() + ".", exc.status, exc.headers)
        token, _session = web.sessions.new()
        log.info("web: logged in from %s", address)
        response = RedirectResponse(target, status_code=303)
        _set_cookie(response, token)
        return response

    async def logout(request: Request) -> Response:
        await web.form_with_csrf(request)
        web.sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse("/login" if web.password else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def voices_page(request: Request) -> Response:
        # `voxd voices` in a process of its own: listing Qwen3-TTS's speakers may need its checkpoint
        code, text = await _voxd(web, ["voices"], DOCTOR_SECONDS)
        rows = [row for line in text.splitlines() if (row := _voice_row(line))] if code == 0 else []
        problem = "" if code == 0 else (text.strip().splitlines() or [f"voxd voices failed ({code})"])[-1]
        return page(request, "voices.html", voices=rows, problem=problem, engine=web.settings.engine,
                    can_preview=web.settings.engine in ("espeak", "piper", "remote"))

    async def preview(request: Request) -> Response:
        fields = await web.form_with_csrf(request)
        voice = fields.get("voice", "")[:200]
        if web.settings.engine not in ("espeak", "piper", "remote"):
            raise Refused(409, "a preview loads a second copy of the model beside the render: "
                          "use voxd voices preview while the daemon is idle")
        with tempfile.TemporaryDirectory(prefix="voxd-preview-") as folder:
            out = Path(folder) / "preview.wav"
            async with preview_lock:
                code, text = await _voxd(web, ["voices", "preview", "-o", str(out)], PREVIEW_SECONDS,
                                         positional=[voice, PREVIEW_TEXT])
            if code != 0 or not out.is_file():
                last = text.strip().splitlines()[-1] if text.strip() else f"exit status {code}"
                raise Refused(409, f"no preview of {voice!r}: {last}")
            return Response(out.read_bytes(), media_type="audio/wav", headers={"Cache-Control": "no-store"})

    async def doctor_page(request: Request) -> Response:
        async with doctor_lock:  # one run at a time, and a recent one shown again
            if time.monotonic() - doctor_said[0] > DOCTOR_FRESH_SECONDS:
                doctor_said[:] = [time.monotonic(), *await _voxd(web, ["doctor"], DOCTOR_SECONDS)]
            _, code, text = doctor_said
        lines = [_finding(line) for line in text.splitlines() if line.strip()]
        return page(request, "doctor.html", lines=lines, ok=code == 0)

    g = web.guard
    return [
        Route("/", g(queue_page, api=False), methods=["GET"]),
        Route("/jobs/{id:int}", g(job_page, api=False), methods=["GET"]),
        Route("/jobs/{id:int}", g(act, api=False, changes=True, form=True), methods=["POST"]),
        Route("/upload", g(upload_form, api=False, changes=True), methods=["POST"]),
        Route("/voices", g(voices_page, api=False), methods=["GET"]),
        Route("/voices/preview", g(preview, api=False, changes=True, form=True), methods=["POST"]),
        Route("/doctor", g(doctor_page, api=False), methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", g(logout, api=False, changes=True, form=True), methods=["POST"]),
    ]


def _set_cookie(response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True, samesite="strict")


def _voice_row(line: str) -> tuple[str, str, str] | None:
    """One line of ``voxd voices`` (name, kind and where from, in columns)."""
    parts = re.split(r"\s{2,}", line.strip(), maxsplit=2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


async def _voxd(web: Web, args: list[str], timeout: float, *, positional: Sequence[str] = ()) -> tuple[int, str]:
    """Run a ``voxd`` command with the daemon's configuration, in a process of its own (it may
    import torch or load a voice, which the daemon's page must not wait on or keep).
    ``positional`` goes after ``--``: a value from a request is never taken for an option."""
    config = ["--config", str(web.config_path)] if web.config_path else []
    config += ["--engine", web.settings.engine]  # the daemon's, which `voxd run --engine` may have chosen
    tail = ["--", *positional] if positional else []
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "voxd", *args, *config, *tail,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return 124, f"voxd {args[0]} took longer than {timeout:.0f} s"
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _finding(line: str) -> dict[str, str]:
    """One line of ``voxd doctor`` ("ok  label    text"): its verdict, label and text."""
    verdict = {"ok ": "ok", "NO ": "problem", "   ": "note"}.get(line[:3])
    if verdict is None:
        return {"verdict": "", "label": "", "text": line}
    label, _, text = line[4:].partition(" ")
    return {"verdict": verdict, "label": label, "text": text.strip()}

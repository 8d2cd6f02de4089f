"""The JSON API the page itself uses, and scripts with ``Authorization: Bearer``.

Every answer is JSON (errors ``{"error": "..."}``), except a chapter's audio (AAC, with
Range requests, so a player can seek) and ``/api/events``: server-sent events, one
``jobs`` event with every job whenever one of them changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..cache import ChunkCache
from ..errors import VoxdError
from ..service.records import Job
from ..service.worker import format_duration
from ..verify.report import summary
from .app import Refused, Web
from .media import NotPlayable, chapter_audio, chunk_audio, ready
from .upload import UploadRefused, queue, receive

#: How often the event stream looks at the store, and sends a comment to keep proxies from
#: closing a quiet stream.
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
#: The queue page shows the newest jobs; a library of thousands is still one page.
EVENT_JOBS = 500


def note(job: Job) -> str:
    """The job in a line, as ``voxd jobs`` puts it: what a running one does and how long it has
    left, why one failed or waits, how long a finished one is and what the read-back found."""
    status, read = job.status.value, summary(job)
    if status == "running" and job.phase:
        return job.phase
    if status == "running" and job.eta_seconds is not None:
        speed = f", {job.speed:.1f}x real time" if job.speed else ""
        return f"about {format_duration(job.eta_seconds)} left{speed}" + (f"; {read}" if read else "")
    if status in ("failed", "queued"):
        return job.error or ""
    if status == "done":
        return f"{format_duration(job.audio_seconds)} of audio" + (f"; {read}" if read else "")
    return ""


def job_json(job: Job) -> dict[str, Any]:
    total = job.chunks_total or 0
    running = job.status.value == "running"
    return {
        "note": note(job),
        "id": job.id, "name": job.name, "title": job.title, "author": job.author, "status": job.status.value,
        "chapters": job.chapters, "chunks_done": job.chunks_done, "chunks_total": job.chunks_total,
        "percent": round(100.0 * job.chunks_done / total, 1) if total else None,
        "audio_seconds": round(job.audio_seconds, 1), "expected_seconds": job.expected_seconds,
        "speed": round(job.speed, 2) if job.speed and running else None,
        "eta_seconds": round(job.eta_seconds) if job.eta_seconds is not None else None,  # None unless running
        "phase": job.phase if running else None, "error": job.error,
        "read_back": {"checked": job.chunks_checked, "not_checked": job.chunks_unchecked,
                      "not_checked_why": job.unchecked_why, "flagged": job.chunks_flagged, "said": summary(job)},
        "output": job.output, "created_at": job.created_at, "finished_at": job.finished_at,
    }


def job_detail(web: Web, job: Job) -> dict[str, Any]:
    cache = ChunkCache(web.settings.cache_path)
    chapters = [{"number": ch.index + 1, "title": ch.title, "chunks": len(ch.chunks), "ready": ready(ch, cache),
                 "audio": f"/api/jobs/{job.id}/chapters/{ch.index + 1}/audio"}
                for ch in web.store.chapters(job.id)]
    history = [{"at": e.at, "kind": e.kind, "message": e.message} for e in web.store.events(job.id)]
    flags = [{"chunk": f["position"], "chapter": f["chapter"] + 1, "text": f["text"], "heard": f["heard"],
              "why": f["why"], "takes": f["takes"], "audio": f"/api/jobs/{job.id}/chunks/{f['position']}/audio"}
             for f in web.store.flags(job.id)]
    return {**job_json(job), "chapter_list": chapters, "history": history, "flagged": flags}


def find_job(web: Web, request: Request) -> Job:
    job_id = request.path_params["id"]
    job = web.store.get(job_id) if 0 < job_id < 2**63 else None
    if job is None:
        raise Refused(404, f"no job {job_id}")
    return job


def cancel(web: Web, job: Job, *, purge: bool) -> str:
    """Cancel (and with ``purge`` drop the chunks of) a job, as ``voxd cancel`` does; what happened."""
    if web.store.cancel(job.id, purge=purge):
        said = f"job {job.id} cancelled"
    elif not (purge and job.status.value in ("cancelled", "failed")):
        raise Refused(409, f"job {job.id} is {job.status.value}; only queued or running jobs can be cancelled"
                      + (", and only cancelled or failed ones purged" if purge else ""))
    else:
        said = f"job {job.id}"
    if purge:
        from ..service.disk import purge_job, size

        removed, freed = purge_job(web.settings, web.store, job.id)
        said += f"; {removed} of its chunks ({size(freed)}) removed from the cache"
    return said


def retry(web: Web, job: Job, *, flagged: bool = False, chunks: list[int] | None = None) -> str:
    """Queue a job again, as ``voxd retry`` does; with ``flagged`` or ``chunks``, speaking those again."""
    said = ""
    if flagged or chunks:
        from ..cli_readback import respeak

        try:
            count = respeak(web.settings, web.store, job, flagged=flagged,
                            chunks=",".join(map(str, chunks or [])) or None)
        except VoxdError as exc:
            raise Refused(409, str(exc)) from None
        said = f", speaking {count} chunk(s) again"
    if not web.store.retry(job.id):
        raise Refused(409, f"job {job.id} is {job.status.value}; only done, failed or cancelled jobs can be retried")
    web.wake()
    return f"job {job.id} queued again{said}"


def routes(web: Web) -> list[Route]:
    async def jobs(request: Request) -> Response:
        return JSONResponse([job_json(j) for j in await run_in_threadpool(web.store.jobs)])

    async def one(request: Request) -> Response:
        job = find_job(web, request)
        return JSONResponse(await run_in_threadpool(job_detail, web, job))

    async def upload(request: Request) -> Response:
        inbox = web.settings.inbox_dir
        inbox.mkdir(parents=True, exist_ok=True)
        limit = int(web.settings.web.max_upload_mb * 2**20)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + 2**16:
            raise Refused(413, f"the upload is larger than {web.settings.web.max_upload_mb:g} MB ([web] max_upload_mb)")
        try:
            up = await receive(request.stream(), request.headers.get("content-type", ""), inbox, limit)
        except UploadRefused as exc:
            raise Refused(exc.status, str(exc)) from None
        job, created = await run_in_threadpool(queue, up, inbox, web.store)
        if created:
            web.wake()
        return JSONResponse({**job_json(job), "created": created}, status_code=201 if created else 200)

    async def cancel_one(request: Request) -> Response:
        job = find_job(web, request)
        purge = request.query_params.get("purge", "") in ("1", "true", "yes")
        return JSONResponse({"said": await run_in_threadpool(cancel, web, job, purge=purge)})

    async def retry_one(request: Request) -> Response:
        job = find_job(web, request)
        body: dict[str, Any] = {}
        if int(request.headers.get("content-length") or 0) > 0:
            try:
                body = json.loads(await request.body())
                if not isinstance(body, dict):
                    raise ValueError
                chunks = [int(n) for n in body.get("chunks", [])]
            except (ValueError, TypeError):
                raise Refused(400, 'send {"flagged": true} or {"chunks": [12, 40]}, or nothing') from None
        else:
            chunks = []
        return JSONResponse({"said": await run_in_threadpool(retry, web, job, flagged=bool(body.get("flagged")),
                                                              chunks=chunks)})

    async def playable(request: Request, build: Callable[..., Any]) -> Any:
        """A chapter's or a chunk's audio, built off the event loop; what cannot be played yet is said."""
        job = find_job(web, request)
        try:
            return await run_in_threadpool(build, web.settings, web.store, job, request.path_params["n"])
        except NotPlayable as exc:
            raise Refused(exc.status, str(exc)) from None

    async def chapter(request: Request) -> Response:
        path = await playable(request, chapter_audio)
        return FileResponse(path, media_type="audio/mp4", headers={"Cache-Control": "private, max-age=60"})

    async def chunk(request: Request) -> Response:
        data = await playable(request, chunk_audio)
        return Response(data, media_type="audio/wav", headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        async def stream():
            last, sent = "", 0.0
            while not web.stopping.is_set():
                snapshot = await run_in_threadpool(lambda: [job_json(j) for j in web.store.jobs()[-EVENT_JOBS:]])
                data = json.dumps(snapshot, ensure_ascii=False)
                now = time.monotonic()
                if data != last:
                    yield f"event: jobs\ndata: {data}\n\n"
                    last, sent = data, now
                elif now - sent >= KEEPALIVE_SECONDS:
                    yield ": still here\n\n"
                    sent = now
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    g = web.guard
    return [
        Route("/api/jobs", g(jobs, api=True), methods=["GET"]),
        Route("/api/jobs/{id:int}", g(one, api=True), methods=["GET"]),
        Route("/api/upload", g(upload, api=True, changes=True), methods=["POST"]),
        Route("/api/jobs/{id:int}/cancel", g(cancel_one, api=True, changes=True), methods=["POST"]),
        Route("/api/jobs/{id:int}/retry", g(retry_one, api=True, changes=True), methods=["POST"]),
        Route("/api/jobs/{id:int}/chapters/{n:int}/audio", g(chapter, api=True), methods=["GET"]),
        Route("/api/jobs/{id:int}/chunks/{n:int}/audio", g(chunk, api=True), methods=["GET"]),
        Route("/api/events", g(events, api=True), methods=["GET"]),
    ]

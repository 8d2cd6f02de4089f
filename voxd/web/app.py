"""The web page's Starlette application: its routes, and the one guard every route passes.

The page and the JSON API read the same store the daemon writes, and change it the way the
command line does (``voxd add``, ``cancel``, ``retry``); the worker is woken for what is
queued. Every route is wrapped by :func:`Web.guard`, which decides who may see and who may
change anything (:mod:`voxd.web.auth` says why each rule exists).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..config import Settings
from ..service.store import Store
from .auth import COOKIE, Session, Sessions, Throttle, bearer, from_elsewhere, password_matches

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
Handler = Callable[[Request], Awaitable[Response]]


class Refused(Exception):
    """A request the guard or a handler turns away: status and a sentence for the person."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class Web:
    """What every route needs: the settings, the store, the sessions, how to wake the worker."""

    settings: Settings
    store: Store
    wake: Callable[[], None] = lambda: None
    config_path: Path | str | None = None
    sessions: Sessions = field(default_factory=Sessions)
    throttle: Throttle = field(default_factory=Throttle)
    stopping: threading.Event = field(default_factory=threading.Event)
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(HERE / "templates")))
    #: Without a password, the one CSRF token of this process's pages (no login, no session).
    open_csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def password(self) -> str:
        return self.settings.web.password.get_secret_value()

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def csrf_for(self, session: Session | None) -> str:
        """The token this browser's forms carry: its session's, or without a password the
        process's own (there is no login to make a session; another site cannot read the page)."""
        if session is not None:
            return session.csrf
        return "" if self.password else self.open_csrf

    def try_password(self, request: Request, given: str) -> bool:
        """Whether ``given`` is the password, by the login form or as a bearer token alike: a
        client that sent wrong ones waits before its next is even compared (429), and each
        wrong one is counted and logged."""
        address = client(request)
        wait = self.throttle.wait(address)
        if wait > 0:
            raise Refused(429, f"too many wrong passwords: try again in {int(wait) + 1} seconds",
                          {"Retry-After": str(int(wait) + 1)})
        if password_matches(given, self.password):
            self.throttle.succeeded(address)
            return True
        self.throttle.failed(address)
        return False

    def by_bearer(self, request: Request) -> bool:
        """Whether the request carries the password as a bearer token (a wrong one is a 401)."""
        header = request.headers.get("authorization")
        if not header or not self.password:
            return False
        if self.try_password(request, bearer(header) or ""):
            return True
        raise Refused(401, "wrong password", {"WWW-Authenticate": 'Bearer realm="voxd"'})

    def guard(self, handler: Handler, *, api: bool, changes: bool = False, form: bool = False) -> Handler:
        """``handler`` behind the rules: who is this (no password, a bearer token, a session),
        and for a request that ``changes`` something, is it this page asking. ``form``: the
        handler reads an urlencoded form's token itself (:meth:`form_with_csrf`)."""

        async def run(request: Request) -> Response:
            try:
                self._check_host(request)
                self._check_embedding(request)
                via_bearer = self.by_bearer(request)
                session = self.session(request)
                if self.password and not via_bearer and session is None:
                    if api:
                        raise Refused(401, "log in first: send Authorization: Bearer <password>",
                                      {"WWW-Authenticate": 'Bearer realm="voxd"'})
                    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
                if changes and not via_bearer:
                    self._check_origin(request, session, form=form)
                request.state.session = session
                return await handler(request)
            except Refused as exc:
                return self.refusal(request, exc.status, str(exc), exc.headers, api=api)

        return run

    def _check_host(self, request: Request) -> None:
        """Without a password the page is for this machine: a request for another host name is
        a page elsewhere reaching it through DNS rebinding."""
        if self.password:
            return
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower()
        address = self.settings.web.address
        if host in ("localhost", (address[0] if address else "").lower()):
            return
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            pass
        raise Refused(403, f"this page answers to its own address only, not {host!r}")

    @staticmethod
    def _check_embedding(request: Request) -> None:
        """Another site's page may link here, but not make a browser fetch from here (an image,
        an audio element, a script's request): some answers cost a chapter's encoding or a
        ``voxd doctor`` run. Browsers say so in ``Sec-Fetch-*``, which pages cannot forge."""
        if request.headers.get("sec-fetch-site") == "cross-site" and \
                request.headers.get("sec-fetch-mode", "navigate") != "navigate":
            raise Refused(403, "this page's answers are for the page itself, not for other sites")

    def _check_origin(self, request: Request, session: Session | None, *, form: bool) -> None:
        why = from_elsewhere(request.headers, request.headers.get("host") or "")
        if why:
            log.warning("web: refused %s %s: %s", request.method, request.url.path, why)
            raise Refused(403, f"refused {why}: use the page itself")
        token = request.headers.get("x-csrf-token") or request.query_params.get("csrf") or ""
        if not token and form and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            return  # the handler reads the body and checks the form's token (form_with_csrf)
        self._check_token(request, session, token)

    def _check_token(self, request: Request, session: Session | None, token: str) -> None:
        """A browser's request carries its page's CSRF token; a script on this machine (no
        session, nothing a browser sends) has nothing more to show where there is no password."""
        browser = session is not None or request.headers.get("sec-fetch-site") or request.headers.get("origin")
        if not browser:
            return
        expected = self.csrf_for(session)
        if not expected or not password_matches(token, expected):
            raise Refused(403, "this form has expired: reload the page and try again")

    def refusal(self, request: Request, status: int, message: str, headers: dict[str, str] | None = None,
                *, api: bool) -> Response:
        if api:
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return self.templates.TemplateResponse(request, "message.html", {"web": self, "message": message,
                                               "status": status}, status_code=status, headers=headers)

    async def form_with_csrf(self, request: Request) -> dict[str, str]:
        """A small form's fields, its CSRF token checked where a browser posts it."""
        form = await request.form(max_files=0, max_fields=20)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not self.by_bearer(request):
            self._check_token(request, request.state.session, fields.get("csrf", ""))
        return fields


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def create_app(web: Web) -> Starlette:
    from . import api, pages

    routes = [
        *pages.routes(web),
        *api.routes(web),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = exc.detail if isinstance(exc, HTTPException) else "something went wrong; see the daemon's log"
        if status >= 500:
            log.error("web: %s %s failed", request.method, request.url.path, exc_info=exc)
        return web.refusal(request, status, str(message), api=request.url.path.startswith("/api/"))

    return Starlette(routes=routes, exception_handlers={HTTPException: not_found, Exception: not_found})


def route(path: str, endpoint: Handler, methods: list[str]) -> Route:
    return Route(path, endpoint, methods=methods)

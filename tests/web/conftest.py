"""A real web page server (uvicorn in a thread, on a free loopback port) over a real SQLite store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port
from voxd.config import Settings, WebSettings, load_settings
from voxd.service.store import Store
from voxd.web.server import WebServer

#: The password every ``page`` fixture asks for, as a script sends it.
BEARER = {"Authorization": "Bearer secret"}


def csrf_of(html: str) -> str:
    """The CSRF token a page gives its forms and script."""
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@dataclass
class Page:
    url: str
    settings: Settings
    store: Store
    server: WebServer
    woken: list[int]

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


def start_page(tmp_path: Path, **web: object) -> Page:
    config = tmp_path / "voxd.toml"  # what the page's `voxd doctor` and voice previews run with
    config.write_text(f'inbox = "{tmp_path / "inbox"}"\noutbox = "{tmp_path / "outbox"}"\n'
                      f'state_dir = "{tmp_path / "state"}"\ncache_dir = "{tmp_path / "cache"}"\nengine = "espeak"\n')
    settings = load_settings(config)
    # the environment's VOXD_WEB__LISTEN="" (tests/conftest.py) beats a keyword for a nested setting
    settings = settings.model_copy(update={"web": WebSettings(listen=f"127.0.0.1:{free_port()}", **web)})  # type: ignore[arg-type]
    store = Store(settings.db_path)
    woken: list[int] = []
    server = WebServer(settings, store, wake=lambda: woken.append(1), config_path=config)
    assert server.start()
    assert server.url is not None
    return Page(url=server.url.rstrip("/"), settings=settings, store=store, server=server, woken=woken)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """The page with a password ("secret")."""
    p = start_page(tmp_path, password="secret")
    yield p
    p.server.stop()


@pytest.fixture
def open_page(tmp_path: Path) -> Iterator[Page]:
    """The page without a password (loopback only)."""
    p = start_page(tmp_path)
    yield p
    p.server.stop()

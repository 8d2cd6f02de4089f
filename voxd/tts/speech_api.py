"""What OpenAI-compatible speech servers say, and how voxd reads it.

The request and reply shapes of ``/v1/audio/speech`` servers as they are, not as
one would wish: vLLM-Omni, SGLang-Omni, Kokoro-FastAPI, OpenAI and ``voxd serve``
agree on the endpoint and disagree on details (error shapes, what a model id
says about cloning, busy answers, quota). The remote engine asks this module;
nothing here sends a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import RequestRejected

if TYPE_CHECKING:
    import httpx

#: Refusals that asking again cannot change: the job fails with the server's words.
PERMANENT = frozenset({400, 401, 403, 404, 405, 413, 415, 422})
#: Of those, the ones that refuse the client rather than the request: every request would get them.
REFUSING = frozenset({401, 403})
#: The server is alive but full: wait as it says, send fewer.
OVERLOADED = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Served:
    """What the fleet serves, as the first server to answer ``GET /models`` said."""

    model: str  # the ``model`` field of every request
    identity: str  # the model's identity in cache keys
    voices: list[str] | None  # the voices the servers list; None when they do not say
    clone: bool  # takes ref_audio/ref_text (a Base checkpoint, or voxd serve with one)
    design: bool  # takes task_type VoiceDesign
    seeds: bool  # takes a ``seed``
    voxd: bool  # a ``voxd serve``: "default" and language tags mean what they mean in voxd
    default_voice: str  # what "default" is sent as ("" to leave the field out)


def model_ids(models: Any) -> list[str]:
    data = models.get("data") if isinstance(models, dict) else None
    return [str(m.get("id")) for m in data or [] if isinstance(m, dict) and m.get("id")]


def served_from(models: Any, wanted: str, url: str) -> Served:
    """The Served for ``wanted`` (or the first model listed) from a ``GET /models`` body."""
    data = models.get("data") if isinstance(models, dict) else None
    entries = [m for m in data or [] if isinstance(m, dict) and m.get("id")]
    if not entries:
        raise RequestRejected(f"speech server {shown(url)} lists no models at GET /models")
    if wanted:
        entry = next((m for m in entries if m["id"] == wanted), None)
        if entry is None:
            listed = ", ".join(str(m["id"]) for m in entries)
            raise RequestRejected(f"speech server {shown(url)} does not serve {wanted!r} ([remote] model); "
                                  f"it serves: {listed}")
    else:
        entry = entries[0]
    model = str(entry["id"])
    own = entry.get("voxd") if isinstance(entry.get("voxd"), dict) else None
    if own is not None:  # voxd serve says what its engine can do
        return Served(
            model=model, identity=str(own.get("fingerprint") or model),
            voices=[str(v) for v in own.get("voices") or []] or None,
            clone=bool(own.get("clone")), design=bool(own.get("design")), seeds=bool(own.get("seeds")),
            voxd=True, default_voice=str(own.get("default_voice") or "default"),
        )
    lower = model.lower()
    qwen = "qwen3-tts" in lower or "qwen3tts" in lower
    return Served(
        model=model, identity=f"openai-speech:{model}", voices=None,
        clone=qwen and lower.rstrip("/").endswith("base"), design=qwen and "voicedesign" in lower,
        seeds=qwen, voxd=False, default_voice="",
    )


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(300.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def quota(response: httpx.Response) -> bool:
    """OpenAI's "insufficient_quota" 429: waiting will not bring more credit."""
    return response.status_code == 429 and "insufficient_quota" in response.text


def server_message(response: httpx.Response) -> str:
    """The server's own words from either error shape: OpenAI's envelope or FastAPI's ``detail``."""
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip() or "(no message)")[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
        detail = body.get("detail")
        if detail:
            return (detail if isinstance(detail, str) else str(detail))[:500]
    return str(body)[:300]


def about_voice(response: httpx.Response) -> bool:
    """A refusal of the voice itself (OpenAI's envelope names the parameter)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("param") == "voice"


def hint(status: int) -> str:
    if status in (401, 403):
        return " (check [remote] api_key)"
    if status == 404:
        return " (check [remote] urls, which end in /v1, and [remote] model)"
    return ""


def transport_error(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "refused the connection"
    return f"connection failed ({text})"


def shown(url: str) -> str:
    """A URL fit for a log: any user:password in it left out."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    return url

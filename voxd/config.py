"""The one Settings object: a TOML file, overridden by ``VOXD_*`` environment variables.

Where the file is: ``--config PATH``, else ``$VOXD_CONFIG``, else
``~/.config/voxd/voxd.toml``, else ``/etc/voxd/voxd.toml``; with none of them,
defaults and the environment alone. Relative paths in the file are relative to
the file, so a config next to its inbox keeps working wherever voxd is started.

Every other module receives the Settings it needs as an argument; nothing reads
them from a global.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from .errors import ConfigError

SEARCH_PATH = (Path("~/.config/voxd/voxd.toml"), Path("/etc/voxd/voxd.toml"))
PATH_KEYS = ("inbox", "outbox", "state_dir", "cache_dir", "lexicon_file")
#: The global lexicon read when ``lexicon_file`` is not set: this name beside the config file.
LEXICON_NAME = "lexicon.toml"


def _default_state_dir() -> Path:
    # systemd's StateDirectory= exports this; it is the right home for the database.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(xdg).expanduser() / "voxd"


def clean_urls(value: list[str]) -> list[str]:
    """Server base URLs, each once, without a trailing slash; ValueError for one that is not http(s)."""
    cleaned = []
    for url in value:
        url = url.strip().rstrip("/")
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// URL (e.g. 'http://gpu-box:8880/v1')")
        if url not in cleaned:
            cleaned.append(url)
    return cleaned


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EspeakSettings(_Section):
    rate_wpm: int = Field(175, ge=80, le=450, description="speaking rate, words per minute")
    batch_size: int = Field(16, ge=1, le=256)


class PiperSettings(_Section):
    """Piper (``engine = "piper"``): a neural voice on the CPU, from the ``voxd[piper]`` extra."""

    # a path to a voice's .onnx (its .onnx.json beside it) or an installed voice's name;
    # "": the first installed one (voices/piper/ under state_dir, then voice packages)
    voice: str = ""
    # language -> voice (a path or a name), e.g. {de = "de_DE-thorsten-medium"}
    voices: dict[str, str] = {}
    length_scale: float = Field(1.2, ge=0.25, le=4.0, description="pace: above 1 is slower")
    noise_scale: float = Field(0.667, ge=0.0, le=2.0)
    noise_w: float = Field(0.8, ge=0.0, le=2.0)
    speaker: str = ""  # a multi-speaker voice's speaker, by name or number
    workers: int = Field(0, ge=0, le=256, description="threads speaking at once; 0: one per core")
    batch_size: int = Field(0, ge=0, le=1024, description="chunks per batch; 0: four per worker")


class VerifySettings(_Section):
    """The read-back: each take heard by a speech recogniser and spoken again when it says something else."""

    # "all": every take; "suspect": only takes whose length or samples look wrong; "off"
    mode: Literal["all", "suspect", "off"] = "all"
    # a faster-whisper model name ("tiny.en", "small", "large-v3-turbo"), a hub repository,
    # or a local CTranslate2 folder; English-only models (".en") are faster, other languages
    # need a multilingual one
    model: str = "tiny.en"
    device: str = "auto"  # "auto" (a CUDA card when CTranslate2 sees one), "cpu", "cuda", "cuda:1"
    compute_type: str = "auto"  # int8 on the CPU, float16 on a GPU
    cpu_threads: int = Field(1, ge=1, le=256)
    retakes: int = Field(2, ge=0, le=10)  # a take heard wrong is spoken again up to this many times
    # without a recogniser (a missing model, a failed fetch) the job waits, instead of
    # rendering with its chunks marked "not checked"
    required: bool = False
    max_error: float = Field(0.6, gt=0, le=1)  # share of letters heard otherwise above which a take is wrong
    max_tail: int = Field(3, ge=0, le=1000)  # words heard after the text ended
    max_missing: int = Field(3, ge=1, le=1000)  # words in a row not heard (and a quarter of the text)
    # OpenAI-compatible transcription servers (`voxd serve` on a GPU box, vLLM serving Whisper):
    # takes are read back there instead of here; `model` is then the name they serve
    urls: list[str] = []
    api_key: SecretStr = SecretStr("")

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return clean_urls(value)


class QwenSettings(_Section):
    custom_voice_model: str = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
    voice_design_model: str = "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign"
    base_model: str = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
    device: str = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    batch_size: int | None = Field(None, ge=1, le=512)
    # "voxd": voxd's decode loop (static cache, CUDA graphs, a frame budget per chunk);
    # "qwen_tts": the library's own, the reference. Same tokens when greedy.
    decode_loop: Literal["voxd", "qwen_tts"] = "voxd"
    cuda_graphs: bool = True
    # Items per codec decoder call: 0 = as many as the free GPU memory holds (the decoder,
    # not generation, sets a batch's peak memory). The audio is the same either way.
    decode_batch: int = Field(0, ge=0, le=1024)
    # Decode a batch's audio while the next batch generates (a thread, and on a GPU a CUDA
    # stream, of its own). The audio is the same; off until measured on a card.
    decode_overlap: bool = False
    # With decode_loop = "voxd" and CUDA graphs: decode a batch in at most this many rows,
    # each row taking the next chunk when its chunk ends (0: a row per chunk). The audio is the same.
    decode_rows: int = Field(0, ge=0, le=1024)
    # Sampling. The defaults are those of the official checkpoints' generation_config.json.
    # The talker picks each frame's first codebook; the sub-talker fills in the other 15.
    do_sample: bool = True
    temperature: float = Field(0.9, gt=0, le=10)
    top_k: int = Field(50, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    repetition_penalty: float = Field(1.05, gt=0, le=10)
    subtalker_do_sample: bool = True
    subtalker_temperature: float = Field(0.9, gt=0, le=10)
    subtalker_top_k: int = Field(50, ge=0)
    subtalker_top_p: float = Field(1.0, gt=0, le=1)
    seed: int = Field(0, ge=0, description="random seed: with voxd's loop each chunk's own is derived from it")
    # Speak a chunk again (alone, another seed) when its audio is far longer or shorter
    # than its text predicts; a chunk that ran into the length cap always is.
    check_durations: bool = True


class RemoteSettings(_Section):
    """``engine = "remote"``: OpenAI-compatible speech servers (vLLM-Omni, SGLang-Omni,
    Kokoro-FastAPI, ``voxd serve``...) that all serve the same model."""

    urls: list[str] = []
    api_key: SecretStr = SecretStr("")
    model: str = ""
    max_in_flight: int = Field(0, ge=0, le=64, description="per server; 0 adapts")
    timeout_seconds: float = Field(60.0, ge=1, le=3600)
    pause_after_seconds: float = Field(120.0, ge=0, le=86400)

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return clean_urls(value)


class ServeSettings(_Section):
    """``voxd serve``: voxd's own engines as an OpenAI-compatible speech server."""

    host: str = "127.0.0.1"
    port: int = Field(8880, ge=1, le=65535)
    api_key: SecretStr = SecretStr("")
    engine: Literal["", "auto", "qwen", "espeak", "piper"] = ""
    model_name: str = ""
    max_queue: int = Field(256, ge=1, le=100_000)
    max_input_chars: int = Field(4096, ge=1, le=1_000_000)
    max_body_mb: float = Field(16.0, gt=0, le=1024)
    batch_wait_ms: float = Field(20.0, ge=0, le=10_000)
    max_connections: int = Field(512, ge=1, le=1_000_000)
    request_timeout_seconds: float = Field(30.0, gt=0, le=3600)


class WebSettings(_Section):
    """The daemon's web page and its JSON API (:mod:`voxd.web`)."""

    # host:port; "" turns the page off. An address other than loopback needs a password.
    listen: str = "127.0.0.1:8765"
    password: SecretStr = SecretStr("")
    max_upload_mb: float = Field(512.0, gt=0, le=65536)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        value = value.strip()
        if value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{value!r} is not an address like '127.0.0.1:8765' (or \"\" for no web page)")
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to listen on, or None where the page is off."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


TEMPLATE_FIELDS = {
    "job": 1, "file": "book.epub", "title": "Title", "author": "Author", "chapters": 3,
    "duration": "1h02m03s", "elapsed": "12m00s", "output": "/out/book.m4b", "reason": "why",
    "attempt": 1, "done": 2, "failed": 1, "queued": 0, "hours": 24, "lines": "...",
    "checks": "checked 118 of 120, 2 flagged",
}


class Templates(_Section):
    """Notification texts; {fields} are filled from the job (see config/voxd.toml)."""

    done_title: str = "Audiobook ready: {title}"
    done_body: str = ("{title} by {author}\n{duration} of audio in {chapters} chapters, rendered in {elapsed}\n"
                      "read back: {checks}\n{output}")
    failed_title: str = "voxd could not convert {file}"
    failed_body: str = "{reason}"
    started_title: str = "Rendering {title}"
    started_body: str = "{title} by {author}: {chapters} chapters (attempt {attempt})"
    digest_title: str = "voxd: {done} done, {failed} failed in the last {hours} hours"
    digest_body: str = "{lines}"

    @model_validator(mode="after")
    def _fields_known(self) -> Templates:
        for name in type(self).model_fields:
            template = getattr(self, name)
            try:
                template.format(**TEMPLATE_FIELDS)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"{name}: bad template {template!r} ({type(exc).__name__}: {exc}); "
                    f"fields are {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
                ) from None
        return self


def _parse_window(value: str) -> tuple[int, int] | None:
    """'23:00-07:00' -> minutes since midnight (start, end); '' -> None (always)."""
    value = value.strip()
    if not value:
        return None
    try:
        start, end = (part.strip() for part in value.split("-"))
        minutes = []
        for part in (start, end):
            hh, mm = part.split(":")
            h, m = int(hh), int(mm)
            if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
                raise ValueError
            minutes.append(h * 60 + m)
    except ValueError:
        raise ValueError(f"{value!r} is not a window like '23:00-07:00'") from None
    if minutes[0] == minutes[1]:
        raise ValueError(f"{value!r} starts and ends at the same time; leave it empty to render at any hour")
    return minutes[0], minutes[1]


class Settings(BaseSettings):
    """Everything voxd can be told. ``config/voxd.toml`` documents each key."""

    model_config = SettingsConfigDict(
        env_prefix="VOXD_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    # folders
    inbox: Path = Path("~/voxd/inbox")
    outbox: Path = Path("~/voxd/outbox")
    state_dir: Path = Field(default_factory=_default_state_dir)
    cache_dir: Path | None = None

    # speech
    # "auto": Qwen3-TTS with a usable GPU, else Piper with a voice installed, else eSpeak (voxd.tts.auto)
    engine: Literal["auto", "qwen", "espeak", "piper", "remote"] = "auto"
    voice: str = ""
    language: str | None = None

    # notifications
    notify_urls: list[SecretStr] = []
    notify_events: list[Literal["done", "failed", "started"]] = ["done", "failed"]
    digest_time: str = ""
    templates: Templates = Templates()

    # scheduling
    render_window: str = ""

    # disk: finished books' chunks give way past either (see voxd.service.disk)
    cache_max_gb: float = Field(10.0, ge=0)
    cache_min_free_gb: float = Field(5.0, ge=0)

    # watching the inbox
    settle_seconds: float = Field(5.0, gt=0, le=3600)
    rescan_seconds: float = Field(300.0, ge=1, le=86400)
    poll: bool = False

    # the queue
    max_attempts: int = Field(3, ge=1, le=100)
    lease_seconds: float = Field(300.0, ge=5)
    retry_delay_seconds: float = Field(60.0, ge=0.1, le=86400)
    umask: str = Field("", pattern=r"^(0?[0-7]{3})?$")

    # reading books
    toc_depth: int | None = Field(None, ge=1, le=10)
    skip_front_back_matter: bool = True
    ingest_timeout_seconds: float = Field(300.0, gt=0)
    ingest_memory_mb: int = Field(2048, ge=0)
    # a book whose text would play longer than this fails before its render (0: no ceiling)
    max_book_hours: float = Field(24.0, ge=0)

    # text and pacing
    chunk_target_chars: int = Field(300, ge=20, le=2000)
    chunk_max_chars: int = Field(500, ge=40, le=4000)
    speak_chapter_titles: bool = True
    pause_sentence: float = Field(0.35, ge=0, le=10)
    pause_paragraph: float = Field(0.8, ge=0, le=10)
    pause_section: float = Field(1.6, ge=0, le=30)
    pause_chapter: float = Field(2.0, ge=0, le=30)
    # a section break inside a chapter: the pause alone, or "Part Two" spoken after it
    section_breaks: Literal["pause", "spoken"] = "pause"
    # what a PDF figure whose labels were left out is called ("Figure."), and an EPUB formula
    # whose alt text is a placeholder ("formula"), or nothing
    figure_mention: bool = False
    # EPUB code and markup listings (<pre>, a paragraph of nothing but code): "A code example." in
    # the book's language, nothing, or read line by line; inline code in a sentence is always read
    code_listings: Literal["mention", "skip", "read"] = "mention"
    # how to say words (voxd.narration.lexicon): a TOML file of word = "what to say", or a PLS file;
    # unset: lexicon.toml beside the config file, if there is one
    lexicon_file: Path | None = None

    # output
    bitrate: int = Field(64000, ge=16000, le=320000)
    normalize_loudness: bool = True
    loudness_lufs: float = Field(-18.0, ge=-40.0, le=-5.0)
    peak_dbfs: float = Field(-3.0, ge=-20.0, le=0.0)
    max_chapter_minutes: float = Field(0.0, ge=0.0, le=1440.0)
    write_sidecars: bool = True

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    espeak: EspeakSettings = EspeakSettings()
    piper: PiperSettings = PiperSettings()
    verify: VerifySettings = VerifySettings()
    qwen: QwenSettings = QwenSettings()
    remote: RemoteSettings = RemoteSettings()
    serve: ServeSettings = ServeSettings()
    web: WebSettings = WebSettings()

    @field_validator("render_window")
    @classmethod
    def _window(cls, value: str) -> str:
        _parse_window(value)
        return value

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str) -> str:
        value = value.strip()
        if value:
            try:
                hh, mm = value.split(":")
                if not (0 <= int(hh) < 24 and 0 <= int(mm) < 60):
                    raise ValueError
            except ValueError:
                raise ValueError(f"{value!r} is not a time like '08:00'") from None
        return value

    @property
    def window_minutes(self) -> tuple[int, int] | None:
        return _parse_window(self.render_window)

    @model_validator(mode="after")
    def _remote_urls(self) -> Settings:
        if self.engine == "remote" and not self.remote.urls:
            raise ValueError(
                'engine = "remote" needs at least one speech server in [remote] urls, '
                'e.g. urls = ["http://gpu-box:8880/v1"]'
            )
        return self

    @model_validator(mode="after")
    def _chunk_limits(self) -> Settings:
        if self.chunk_max_chars < self.chunk_target_chars:
            raise ValueError(
                f"chunk_max_chars ({self.chunk_max_chars}) must be at least "
                f"chunk_target_chars ({self.chunk_target_chars})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init values; the environment must win over them.
        return (env_settings, init_settings)

    # Derived paths, absolute and with ~ expanded, for the rest of the code.
    @property
    def inbox_dir(self) -> Path:
        return _absolute(self.inbox)

    @property
    def outbox_dir(self) -> Path:
        return _absolute(self.outbox)

    @property
    def state_path(self) -> Path:
        return _absolute(self.state_dir)

    @property
    def cache_path(self) -> Path:
        if self.cache_dir is not None:
            return _absolute(self.cache_dir)
        return self.state_path / "cache"

    @property
    def db_path(self) -> Path:
        return self.state_path / "voxd.sqlite3"

    def web_job_path(self, job_id: int) -> Path:
        """Where the web page keeps what it built for a job (its chapters' audio); purged with it."""
        return self.state_path / "web" / f"job-{job_id}"

    @property
    def lexicon_path(self) -> Path | None:
        return _absolute(self.lexicon_file) if self.lexicon_file is not None else None

    def pause_seconds(self, pause: str) -> float:
        """The silence after a chunk whose pause is ``pause`` (a :class:`voxd.book.Pause`)."""
        return {
            "sentence": self.pause_sentence,
            "paragraph": self.pause_paragraph,
            "section": self.pause_section,
            "chapter": self.pause_chapter,
        }[str(getattr(pause, "value", pause))]


def _absolute(path: Path) -> Path:
    return path.expanduser().absolute()


def find_config(explicit: Path | str | None = None) -> Path | None:
    """The config file to read, or None when there is none (defaults + environment)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    env = os.environ.get("VOXD_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} (from $VOXD_CONFIG) does not exist")
        return path
    for candidate in SEARCH_PATH:
        candidate = candidate.expanduser()
        if candidate.is_file():
            return candidate
    return None


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; every problem becomes one ConfigError naming the keys."""
    path = find_config(config)
    values: dict[str, Any] = _read_toml(path) if path else {}
    if path and "lexicon_file" not in values and (path.parent / LEXICON_NAME).is_file():
        values["lexicon_file"] = str(path.parent.absolute() / LEXICON_NAME)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except SettingsError as exc:  # a VOXD_* value for a list or a table that is not JSON
        raise ConfigError(_describe_env(exc)) from None
    if settings.lexicon_path is not None:
        from .narration.lexicon import load_lexicon_file

        load_lexicon_file(settings.lexicon_path)  # a broken lexicon stops voxd now, naming the file
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    base = path.parent.absolute()
    for key in PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            data[key] = str(base / value)
    return data


def _describe_env(exc: SettingsError) -> str:
    """pydantic-settings names the field, not the variable: name the variables a person set."""
    field = re.search(r'field "([^"]+)"', str(exc))
    prefix = f"VOXD_{field.group(1).upper()}" if field else "VOXD_"
    names = sorted(k for k in os.environ if k.upper() == prefix or k.upper().startswith(prefix + "__"))
    which = ", ".join(names) or f"a {prefix}* variable"
    return (f"invalid settings (VOXD_* environment): {which} cannot be read: a list or a table in an "
            "environment variable is written as JSON, e.g. VOXD_REMOTE__URLS='[\"http://gpu-box:8000/v1\"]'")


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"config file {path} or VOXD_* environment" if path else "VOXD_* environment"
    lines = [f"invalid settings ({where}):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against config/voxd.toml)"
        got = err.get("input")
        shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {key}: {msg}{shown}")
    return "\n".join(lines)

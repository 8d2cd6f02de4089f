"""Language tags as Qwen3-TTS names them, shared by the in-process and the remote engines.

Books declare ISO 639 / BCP 47 tags ("en", "de-AT", "zho"); Qwen3-TTS (and the
servers that serve it) take language names ("English", "German"). One table,
so both engines agree on what a tag means.
"""

from __future__ import annotations

AUTO_LANGUAGES = frozenset({"", "auto", "und", "mul", "zxx"})
#: ISO 639-1 and 639-2/3 codes of the languages Qwen3-TTS speaks, to the model's names.
ISO_LANGUAGES = {
    "en": "english", "eng": "english",
    "zh": "chinese", "zho": "chinese", "chi": "chinese", "cmn": "chinese",
    "de": "german", "deu": "german", "ger": "german",
    "fr": "french", "fra": "french", "fre": "french",
    "es": "spanish", "spa": "spanish",
    "it": "italian", "ita": "italian",
    "pt": "portuguese", "por": "portuguese",
    "ru": "russian", "rus": "russian",
    "ja": "japanese", "jpn": "japanese",
    "ko": "korean", "kor": "korean",
}


def primary_subtag(tag: str | None, default: str = "") -> str:
    """The language a tag's variants share: "de-AT", "de_AT" and "DE" are "de"; ``default``
    for no tag."""
    return (tag or default).strip().lower().replace("_", "-").split("-", 1)[0]


def language_name(tag: str | None) -> str | None:
    """Qwen3-TTS's name for a tag ("en-US" -> "English"), "Auto" for none, None if unknown."""
    tag = (tag or "").strip().lower().replace("_", "-")
    if tag in AUTO_LANGUAGES:
        return "Auto"
    name = ISO_LANGUAGES.get(tag) or ISO_LANGUAGES.get(primary_subtag(tag))
    if name is None and tag in ISO_LANGUAGES.values():
        name = tag
    return name.capitalize() if name else None

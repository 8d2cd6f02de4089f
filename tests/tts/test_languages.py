"""voxd.tts.languages: tags as Qwen3-TTS names them, and the language a tag's variants share."""

from __future__ import annotations

from voxd.tts.languages import language_name, primary_subtag


def test_a_tags_variants_share_their_primary_subtag() -> None:
    assert [primary_subtag(t) for t in ("de-AT", "de_AT", "DE", "zh-Hant-TW", "eng")] == ["de", "de", "de", "zh", "eng"]
    assert primary_subtag(None) == "" and primary_subtag(None, "en") == "en" and primary_subtag("", "en") == "en"


def test_language_names_for_tags_and_none() -> None:
    assert language_name("en-US") == "English" and language_name("deu") == "German"
    assert language_name(None) == "Auto" and language_name("und") == "Auto"
    assert language_name("xx") is None

"""Placeholder alt texts: left out of what is read, in every language the matter classifier knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxd.ingest.alttext import REPEATED_MIN, alttexts, is_placeholder, repeated_alttexts
from voxd.ingest.epub import read_epub

from .test_epub import MATHML, build_epub

PLACEHOLDERS = {
    "en": ["Alternative text not available", "image", "Figure", "No description", "fig_3.png", "Figure 12"],
    "de": ["Alternativtext nicht verfügbar", "Bild", "Abbildung 3", "Keine Beschreibung"],
    "fr": ["Texte alternatif non disponible", "image", "Aucune description"],
    "es": ["Texto alternativo no disponible", "Imagen", "Sin descripción"],
    "it": ["Testo alternativo non disponibile", "Immagine", "Nessuna descrizione"],
    "pt": ["Texto alternativo não disponível", "Imagem", "Sem descrição"],
    "ru": ["Альтернативный текст недоступен", "Рисунок", "Рис. 4", "Нет описания"],
    "zh": ["替代文本不可用", "图片", "图 2", "无描述"],
    "ja": ["代替テキストなし", "画像", "説明なし"],
    "ko": ["대체 텍스트 없음", "이미지", "설명 없음"],
}
DESCRIPTIONS = ["E equals m c squared", "x squared plus y squared", "x2", "H2O", "the sum over n of a n",
                "Die Summe von a und b", "сумма квадратов", "二次方程式"]


@pytest.mark.parametrize("language", sorted(PLACEHOLDERS))
def test_placeholders_in_each_language_are_told_from_descriptions(language: str) -> None:
    assert all(is_placeholder(text) for text in PLACEHOLDERS[language]), PLACEHOLDERS[language]


def test_descriptions_are_not_placeholders() -> None:
    assert not any(is_placeholder(text) for text in DESCRIPTIONS)


def test_one_alt_text_on_most_formulas_is_a_placeholder_but_x_is_not() -> None:
    counts = alttexts([
        b'<math alttext="Equation from the print edition"/>' * REPEATED_MIN + b'<math alttext="a plus b"/>',
        b"<math alttext='x'/>" * 30 + b'<math alttext="y"/>',
    ])
    assert counts["Equation from the print edition"] == REPEATED_MIN and counts["x"] == 30
    only = alttexts([b'<math alttext="Equation from the print edition"/>' * REPEATED_MIN])
    assert repeated_alttexts(only) == {"Equation from the print edition"}
    assert repeated_alttexts(counts) == frozenset()  # "x" is most, but a letter, not a phrase


def _math(alt: str, display: str = "") -> str:
    return f'<math xmlns="{MATHML}" alttext="{alt}"{display}><mi>a</mi><mo>=</mo><mi>b</mi></math>'


def _book(tmp_path: Path, body: str, language: str = "en", name: str = "m.epub") -> Path:
    return build_epub(tmp_path / name, [("m.xhtml", "Algebra", f"<h1>Algebra</h1>{body}")], language=language)


def test_placeholder_alt_text_of_a_formula_is_left_out_or_named_with_figure_mention(tmp_path: Path) -> None:
    body = (
        f"<p>Solve {_math('Alternative text not available')} for a.</p>"
        f"<p>Then {_math('fig_3.png')} holds, and {_math('a equals b')} too.</p>"
        + _math("image", ' display="block"')
    )
    book = read_epub(_book(tmp_path, body))
    assert book.chapters[0].paragraphs == ("Solve for a.", "Then holds, and a equals b too.")
    named = read_epub(_book(tmp_path, body), figure_mention=True)
    assert named.chapters[0].paragraphs == (
        "Solve formula for a.", "Then formula holds, and a equals b too.", "formula",
    )
    german = read_epub(_book(tmp_path, body.replace("Alternative text not available", "Kein Alternativtext"),
                             language="de", name="de.epub"), figure_mention=True)
    assert german.chapters[0].paragraphs[0] == "Solve Formel for a."


def test_an_alt_text_repeated_on_most_formulas_of_the_book_is_left_out(tmp_path: Path) -> None:
    """Repeated across chapters: no chapter alone holds enough of them."""
    same = "Equation rendered as an image in the print edition"
    docs = [
        (f"c{n}.xhtml", f"Part {n}",
         f"<h1>Part {n}</h1>" + "".join(f"<p>Step {i}: {_math(same)}.</p>" for i in range(4))
         + f"<p>Last: {_math('c equals d')}.</p>")
        for n in range(4)
    ]
    book = read_epub(build_epub(tmp_path / "rep.epub", docs))
    text = " ".join(p for c in book.chapters for p in c.paragraphs)
    assert same not in text and text.count("c equals d") == 4
    assert "Step 0: ." in text or "Step 0:." in text

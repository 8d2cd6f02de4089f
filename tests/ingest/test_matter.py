"""voxd.ingest.matter: front and back matter in every language Qwen3-TTS speaks, by title and
by text, and the EPUB and PDF readers skipping it alike (German and French books built here)."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from ebooklib import epub

from tests.ingest.test_epub import build_epub
from tests.ingest.test_pdf import draw_heading, draw_lines, draw_paragraphs, new_pages, save
from voxd.ingest import read_book
from voxd.ingest.matter import is_matter_title, matter_kind, text_kind, title_kind


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Inhaltsverzeichnis", "contents"), ("Table des matières", "contents"), ("Índice", "contents"),
        ("Sommario", "contents"), ("Sumário", "contents"), ("Содержание", "contents"), ("目录", "contents"),
        ("目次", "contents"), ("목차", "contents"),
        ("Register", "index"), ("Stichwortverzeichnis", "index"), ("Index des noms", "index"),
        ("Índice alfabético", "index"), ("Indice dei nomi", "index"), ("Índice remissivo", "index"),
        ("Предметный указатель", "index"), ("索引", "index"), ("찾아보기", "index"),
        ("Abbildungsverzeichnis", "list"), ("Liste des tableaux", "list"), ("Lista de abreviaturas", "list"),
        ("Elenco delle figure", "list"), ("Список сокращений", "list"), ("図目次", "list"),
        ("List of Symbols", "list"),
        ("Bildnachweis", "credits"), ("Crédits photographiques", "credits"), ("Créditos de las imágenes", "credits"),
        ("Crediti fotografici", "credits"), ("Image credits", "credits"), ("图片来源", "credits"),
        ("Literaturverzeichnis", "bibliography"), ("Bibliographie", "bibliography"),
        ("Bibliografía", "bibliography"), ("Riferimenti bibliografici", "bibliography"),
        ("Referências", "bibliography"), ("Список литературы", "bibliography"), ("参考文献", "bibliography"),
        ("참고문헌", "bibliography"), ("Works Cited", "bibliography"),
        ("Edition", "imprint"), ("Publisher", "imprint"), ("Impressum", "imprint"),
        ("Achevé d'imprimer", "imprint"), ("Выходные данные", "imprint"), ("奥付", "imprint"),
        ("Du même auteur", "title"), ("Widmung", "title"),
    ],
)  # fmt: skip
def test_matter_titles_in_every_language(title: str, kind: str) -> None:
    assert title_kind(title) == kind
    assert is_matter_title(title.upper())


@pytest.mark.parametrize(
    "title",
    ["Erstes Kapitel", "Einleitung", "Préface", "Chapitre premier", "La Bibliothèque", "Capítulo 1",
     "Глава первая", "第一章", "The Publisher's Daughter", "Register of Ships at Sea", "Vorwort"],
)  # fmt: skip
def test_chapter_titles_are_not_matter(title: str) -> None:
    assert title_kind(title) is None


INDEX_LINES = [
    "Aachen, 12, 45", "Bach, Johann Sebastian, 3-7", "Cembalo, 88", "Dresden, 101, 140-142",
    "Eisenach, 2", "Fuge, 77, 79", "Goldberg-Variationen, 150",
]
IMPRINT = [
    "Erste Auflage 2021",
    "© 2021 Beispiel Verlag GmbH, Berlin. Alle Rechte vorbehalten.",
    "Umschlaggestaltung: Jane Doe. Gedruckt in Deutschland.",
    "ISBN 978-3-16-148410-0",
]
PROSE = [
    "Es war einmal ein Müller, der war arm, aber er hatte eine schöne Tochter.",
    "Nun traf es sich, dass er mit dem König zu sprechen kam, und um sich ein Ansehen zu geben, sagte er zu ihm.",
    "Ich habe eine Tochter, die kann Stroh zu Gold spinnen.",
    "Der König sprach zum Müller: das ist eine Kunst, die mir wohl gefällt.",
    "Wenn deine Tochter so geschickt ist, wie du sagst, so bring sie morgen in mein Schloss.",
]


def test_text_that_reads_like_matter() -> None:
    assert text_kind(INDEX_LINES) == "pages"
    assert text_kind(IMPRINT) == "imprint"
    assert text_kind(PROSE) is None
    assert text_kind(["Born in 1850, he died in 1921.", "He wrote 12 books."]) is None
    assert matter_kind("Stichworte", INDEX_LINES) == "pages"
    assert matter_kind("Kapitel 1", PROSE) is None


def _chapter_body(title: str, paragraphs: list[str]) -> str:
    return f"<h1>{title}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs)


def test_german_epub_skips_its_own_front_and_back_matter(tmp_path: Path) -> None:
    docs = [
        ("inhalt.xhtml", "Inhalt", _chapter_body("Inhalt", ["Erstes Kapitel", "Zweites Kapitel", "Register"])),
        ("k1.xhtml", "Erstes Kapitel", _chapter_body("Erstes Kapitel", PROSE)),
        ("k2.xhtml", "Zweites Kapitel", _chapter_body("Zweites Kapitel", list(reversed(PROSE)))),
        ("lit.xhtml", "Literaturverzeichnis", _chapter_body("Literaturverzeichnis", [
            "Grimm, Jacob und Wilhelm: Kinder- und Hausmärchen. Berlin 1812.",
            "Bolte, Johannes: Anmerkungen zu den Kinder- und Hausmärchen. Leipzig 1913."])),
        ("bild.xhtml", "Bildnachweis", _chapter_body("Bildnachweis", ["Umschlag: Archiv des Verlags."])),
        ("register.xhtml", "Register", _chapter_body("Register", INDEX_LINES)),
        ("stichworte.xhtml", "Stichworte", _chapter_body("Stichworte", INDEX_LINES)),
        ("edition.xhtml", "Ausgabe", _chapter_body("Ausgabe", IMPRINT)),
    ]  # fmt: skip
    book = read_book(build_epub(tmp_path / "maerchen.epub", docs, language="de"))
    assert [c.title for c in book.chapters] == ["Erstes Kapitel", "Zweites Kapitel"]
    kept = read_book(tmp_path / "maerchen.epub", skip_front_back_matter=False)
    assert len(kept.chapters) == len(docs)


def test_french_epub_skips_its_own_front_and_back_matter(tmp_path: Path) -> None:
    prose = [
        "Longtemps, je me suis couché de bonne heure.",
        "Parfois, à peine ma bougie éteinte, mes yeux se fermaient si vite que je n'avais pas le temps de me dire.",
        "Et, une demi-heure après, la pensée qu'il était temps de chercher le sommeil m'éveillait.",
    ]
    docs = [
        ("tdm.xhtml", "Table des matières", _chapter_body("Table des matières", ["Chapitre premier"])),
        ("c1.xhtml", "Chapitre premier", _chapter_body("Chapitre premier", prose)),
        ("c2.xhtml", "Chapitre deux", _chapter_body("Chapitre deux", prose[::-1])),
        ("biblio.xhtml", "Bibliographie", _chapter_body("Bibliographie", ["Proust, Marcel. Du côté de chez Swann."])),
        ("credits.xhtml", "Crédits photographiques", _chapter_body("Crédits photographiques", ["Couverture : DR."])),
        ("index.xhtml", "Index des noms", _chapter_body("Index des noms", ["Swann, 3, 17", "Odette, 45"])),
        ("acheve.xhtml", "Achevé d'imprimer", _chapter_body("Achevé d'imprimer", ["Imprimé en France."])),
    ]  # fmt: skip
    toc = [epub.Link(name, title, f"t{i}") for i, (name, title, _) in enumerate(docs)]
    book = read_book(build_epub(tmp_path / "swann.epub", docs, toc, language="fr"))
    assert [c.title for c in book.chapters] == ["Chapitre premier", "Chapitre deux"]


def _german_pdf(path: Path, *, outline: bool) -> Path:
    """Contents, two chapters, a list of figures, a bibliography and an index, one page each."""
    doc = pymupdf.open()
    pages = new_pages(doc, 6)
    y = draw_heading(pages[0], "Inhaltsverzeichnis", y=100)
    draw_lines(pages[0], ["Erstes Kapitel . . . . 2", "Zweites Kapitel . . . . 3", "Abbildungsverzeichnis . . 4",
                          "Literaturverzeichnis . . . 5", "Register . . . . . . 6"], y=y)  # fmt: skip
    for page, title in ((pages[1], "Erstes Kapitel"), (pages[2], "Zweites Kapitel")):
        y = draw_heading(page, title, y=100)
        draw_paragraphs(page, [" ".join(PROSE), " ".join(reversed(PROSE))], y=y)
    y = draw_heading(pages[3], "Abbildungsverzeichnis", y=100)
    draw_lines(pages[3], ["Abb. 1 Die Mühle . . . 2", "Abb. 2 Das Schloss . . . 3"], y=y)
    y = draw_heading(pages[4], "Literaturverzeichnis", y=100)
    draw_lines(pages[4], ["Grimm, Jacob und Wilhelm: Kinder- und Hausmärchen. Berlin 1812."], y=y)
    y = draw_heading(pages[5], "Register", y=100)
    draw_lines(pages[5], INDEX_LINES, y=y)
    if outline:
        doc.set_toc([[1, t, n + 1] for n, t in enumerate(
            ["Inhaltsverzeichnis", "Erstes Kapitel", "Zweites Kapitel", "Abbildungsverzeichnis",
             "Literaturverzeichnis", "Register"])])  # fmt: skip
    return save(doc, path)


@pytest.mark.parametrize("outline", [True, False])
def test_german_pdf_skips_its_own_front_and_back_matter(tmp_path: Path, outline: bool) -> None:
    book = read_book(_german_pdf(tmp_path / "maerchen.pdf", outline=outline))
    assert [c.title for c in book.chapters] == ["Erstes Kapitel", "Zweites Kapitel"]
    text = " ".join(p for c in book.chapters for p in c.paragraphs)
    assert "Aachen" not in text and "Mühle" not in text and "Hausmärchen" not in text

"""Front and back matter: the one classifier the EPUB and PDF readers share.

An audiobook skips contents pages, indexes, lists of figures, credits, bibliographies and
imprint pages, in whatever language the book is written. A section is matter when its
title says so (in any language Qwen3-TTS speaks) or, whatever its title, when its text
looks like one: lines that end in page numbers (a contents page, an index, a list of
figures), or a short page of copyright and printing notices (an imprint called "Edition").
Both readers ask :func:`matter_kind`, so they cannot drift apart again.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

from voxd.ingest.common import norm

#: Titles by kind. Compared after :func:`~voxd.ingest.common.norm` (case folded,
#: punctuation gone, accents kept), so "Table des matières" and "TABLE DES MATIÈRES" match.
_TITLES: dict[str, tuple[str, ...]] = {
    "contents": (
        "contents", "the contents", "table of contents", "toc", "inhalt", "inhaltsverzeichnis",
        "table des matières", "table des matieres", "sommaire", "índice", "indice", "índice general",
        "indice generale", "contenido", "contenidos", "tabla de contenido", "sommario", "sumário",
        "sumario", "содержание", "оглавление", "目录", "目錄", "目次", "もくじ", "차례", "목차",
    ),
    "index": (
        "index", "general index", "subject index", "index of names", "name index", "author index",
        "register", "sachregister", "personenregister", "namensregister", "stichwortverzeichnis",
        "schlagwortverzeichnis", "index des noms", "index des notions", "index thématique",
        "index analytique", "índice alfabético", "índice analítico", "índice onomástico",
        "índice de nombres", "indice analitico", "indice dei nomi", "indice alfabetico",
        "índice remissivo", "указатель", "предметный указатель", "именной указатель",
        "алфавитный указатель", "索引", "찾아보기", "색인",
    ),
    "list": (
        "abbreviations", "list of abbreviations", "list of symbols", "list of acronyms",
        "abbildungsverzeichnis", "tabellenverzeichnis", "abkürzungsverzeichnis", "abkürzungen",
        "symbolverzeichnis", "verzeichnis der abbildungen", "table des figures", "table des illustrations",
        "liste des figures", "liste des tableaux", "liste des illustrations", "liste des abréviations",
        "abréviations", "sigles et abréviations", "índice de figuras", "índice de tablas",
        "índice de ilustraciones", "lista de figuras", "lista de tablas", "lista de abreviaturas",
        "abreviaturas", "siglas", "elenco delle figure", "elenco delle tabelle", "indice delle figure",
        "indice delle tabelle", "elenco delle abbreviazioni", "abbreviazioni", "lista de ilustrações",
        "lista de tabelas", "lista de siglas", "список иллюстраций", "список рисунков", "список таблиц",
        "список сокращений", "список условных обозначений", "сокращения", "условные обозначения",
        "插图目录", "图目录", "圖目錄", "表目录", "表目錄", "缩略语", "略语表", "図目次", "図版目次",
        "表目次", "略語一覧", "略語表", "그림 목차", "표 목차", "약어", "약어표",
    ),
    "credits": (
        "credits", "image credits", "picture credits", "photo credits", "photograph credits",
        "photography credits", "illustration credits", "bildnachweis", "bildnachweise",
        "abbildungsnachweis", "abbildungsnachweise", "bildquellen", "crédits", "crédits photographiques",
        "crédits photos", "crédits des illustrations", "crédits iconographiques", "créditos",
        "créditos de las imágenes", "créditos fotográficos", "créditos de las ilustraciones",
        "crediti", "crediti fotografici", "crediti delle immagini", "referenze fotografiche",
        "referenze iconografiche", "créditos das imagens", "créditos das fotografias",
        "источники иллюстраций", "图片来源", "图片版权", "図版出典", "写真提供", "사진 출처", "도판 출처",
    ),
    "bibliography": (
        "bibliography", "select bibliography", "selected bibliography", "references", "works cited",
        "further reading", "literaturverzeichnis", "literatur", "quellen", "quellenverzeichnis",
        "quellen und literatur", "bibliographie", "bibliografie", "références", "références bibliographiques",
        "ouvrages cités", "bibliografía", "referencias", "referencias bibliográficas", "obras citadas",
        "bibliografia", "riferimenti bibliografici", "opere citate", "referências",
        "referências bibliográficas", "список литературы", "литература", "библиография",
        "использованная литература", "参考文献", "参考书目", "参考書目", "참고문헌", "참고 문헌",
    ),
    "imprint": (
        "copyright", "copyright page", "copyright notice", "imprint", "colophon", "uncopyright",
        "edition", "editions", "publisher", "about the publisher", "publisher information",
        "impressum", "kolophon", "achevé d imprimer", "mentions légales", "colofón", "colofone",
        "colofão", "ficha técnica", "derechos de autor", "выходные данные", "版权", "版权页", "版权信息",
        "版權", "奥付", "판권", "판권 페이지",
    ),
    "title": (
        "title page", "titlepage", "half title", "halftitle", "half title page", "cover", "front cover",
        "back cover", "dedication", "landmarks", "titelseite", "titelblatt", "widmung", "page de titre",
        "couverture", "dédicace", "portada", "dedicatoria", "copertina", "frontespizio", "dedica", "capa",
        "folha de rosto", "dedicatória", "обложка", "титульный лист", "посвящение", "封面", "扉页", "献辞",
        "表紙", "扉", "표지", "헌사",
    ),
}  # fmt: skip
_BY_TITLE = {norm(title): kind for kind, titles in _TITLES.items() for title in titles}
# Titles that go on with a name or a subject: "Also by Jane Doe", "List of Maps".
_TITLE_PATTERNS = (
    ("list", re.compile(r"list of (?:illustrations|figures|tables|maps|plates|symbols|abbreviations|acronyms)")),
    ("title", re.compile(
        r"(?:also|other (?:books|works|titles)) by .+|vom selben autor|du même auteur|del mismo autor"
        r"|dello stesso autore|do mesmo autor|того же автора"
    )),
)

# A line that ends in a page number (or a range of them): contents, index, list of figures.
_PAGE_LINE = re.compile(r".*\D[\s.\u2026·,:]*\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?")
# Notices that only an imprint page carries; two different ones on a short page make it one.
_IMPRINT_MARKS = (
    re.compile(r"\bisbn\b|\bissn\b", re.IGNORECASE),
    re.compile(r"©|\(c\)\s*\d{4}|\bcopyright\b|\bcopyleft\b", re.IGNORECASE),
    re.compile(
        r"all rights reserved|alle rechte vorbehalten|tous droits réservés|todos los derechos reservados"
        r"|tutti i diritti riservati|todos os direitos reservados|все права защищены|版权所有|著作権|무단 전재",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bprinted in\b|\bgedruckt in\b|\bimprimé en\b|\bimpreso en\b|\bstampato in\b|\bimpresso n[oa]\b"
        r"|\bachevé d.imprimer\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"dépôt légal|depósito legal|deposito legale|library of congress|deutsche nationalbibliothek"
        r"|british library|cataloging.in.publication|catalogage",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bfirst (?:published|edition|printing)\b|\b\d+\.\s*auflage\b|\berste auflage\b|\bpremière édition\b"
        r"|\bprimera edición\b|\bprima edizione\b|\bprimeira edição\b|\bpublished by\b|\bverlag\b",
        re.IGNORECASE,
    ),
)
#: The kind of a section that is nothing but links into the book ("Theorems", "Notation"):
#: the EPUB reader tells it by its links, which the text alone no longer shows.
NAVIGATION = "navigation: links into the book"
_IMPRINT_MAX_CHARS = 2500
_LIST_MIN_LINES = 3


def title_kind(title: str) -> str | None:
    """The kind of matter a title names ("contents", "index", "imprint"...), or None."""
    text = norm(title)
    if not text:
        return None
    kind = _BY_TITLE.get(text)
    if kind:
        return kind
    for kind, pattern in _TITLE_PATTERNS:
        if pattern.fullmatch(text):
            return kind
    return None


def is_matter_title(title: str) -> bool:
    return title_kind(title) is not None


def text_kind(lines: Sequence[str]) -> str | None:
    """The kind of matter a section's text looks like, whatever its title, or None.

    ``lines`` are its paragraphs (EPUB) or printed rows (PDF). Short lines that mostly
    end in a page number are a contents page, an index or a list of figures ("pages");
    a short section carrying two kinds of publishing notice is an imprint.
    """
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        return None
    text = "\n".join(lines)
    if len(text) <= _IMPRINT_MAX_CHARS and sum(1 for mark in _IMPRINT_MARKS if mark.search(text)) >= 2:
        return "imprint"
    if len(lines) >= _LIST_MIN_LINES:
        numbered = sum(1 for line in lines if _PAGE_LINE.fullmatch(line))
        if numbered * 2 >= len(lines) and statistics.median(len(line) for line in lines) <= 90:
            return "pages"
    return None


def matter_kind(title: str, lines: Sequence[str] = ()) -> str | None:
    """Why a section with this title and text is front or back matter, or None if it is not."""
    return title_kind(title) or text_kind(lines)

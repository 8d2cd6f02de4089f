"""Alternative text that describes nothing: what converters write when they have no description.

A formula's ``alttext`` is read where a book gives one (its MathML is a soup of letters and
operators). Converters fill it when they have nothing to say: "Alternative text not
available", "image", "figure", "No description", a file name (``fig_3.png``), or one phrase
put on every formula of the book. Said aloud, such a book repeats the phrase thousands of
times. A placeholder is left out (with ``figure_mention`` the short word is said instead), in
every language the matter classifier (:mod:`voxd.ingest.matter`) knows.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable

from voxd.ingest.common import norm

__all__ = ["is_placeholder", "repeated_alttexts"]

# Compared after norm(): case folded, punctuation gone, accents kept.
_PHRASES = (
    # en
    "alternative text not available", "alt text not available", "alternative text unavailable",
    "no alternative text", "no alt text", "alt text", "alternative text", "alt", "no description",
    "no description available", "description not available", "image description not available",
    "image not available", "image", "img", "figure", "fig", "picture", "photo", "graphic", "illustration",
    "equation", "formula", "math", "mathematics", "inline math", "display math", "placeholder", "untitled",
    "null", "none", "undefined", "icon", "spacer", "unknown", "eq", "eqn", "mml", "pic", "inline", "display",
    # de
    "alternativtext nicht verfügbar", "kein alternativtext", "alternativtext", "bild", "abbildung", "abb",
    "grafik", "keine beschreibung", "keine beschreibung verfügbar", "formel", "gleichung", "foto",
    # fr
    "texte alternatif non disponible", "texte alternatif indisponible", "pas de texte alternatif",
    "texte alternatif", "aucune description", "pas de description", "description non disponible",
    "illustration", "formule", "équation",
    # es
    "texto alternativo no disponible", "sin texto alternativo", "texto alternativo", "imagen", "figura",
    "ilustración", "sin descripción", "descripción no disponible", "fórmula", "ecuación", "foto",
    # it
    "testo alternativo non disponibile", "nessun testo alternativo", "testo alternativo", "immagine",
    "illustrazione", "nessuna descrizione", "descrizione non disponibile", "formula", "equazione",
    # pt
    "texto alternativo não disponível", "texto alternativo indisponível", "sem texto alternativo", "imagem",
    "ilustração", "sem descrição", "descrição não disponível", "equação",
    # ru
    "альтернативный текст недоступен", "альтернативный текст отсутствует", "нет альтернативного текста",
    "изображение", "рисунок", "рис", "иллюстрация", "картинка", "фото", "нет описания",
    "описание отсутствует", "формула", "уравнение",
    # zh
    "替代文本不可用", "无替代文本", "无描述", "暂无描述", "图片", "图像", "图", "插图", "公式", "圖片", "圖像",
    "圖", "無描述", "方程",
    # ja
    "代替テキストなし", "代替テキストはありません", "説明なし", "画像", "図", "イラスト", "写真", "数式",
    # ko
    "대체 텍스트 없음", "대체 텍스트를 사용할 수 없음", "설명 없음", "이미지", "그림", "사진", "수식",
)  # fmt: skip
_PLACEHOLDERS = frozenset(norm(p) for p in _PHRASES)
# A placeholder word with a number, as a tool names things: "Figure 3", "image001", "eq_12", "Рис. 4".
_NUMBERED = re.compile(r"(?P<word>\D+?) ?\d+(?: \d+)*")
# A file name: fig_3.png, images/eq-12.svg.
_FILE_NAME = re.compile(r"[\w./\\-]+\.(?:png|jpe?g|gif|svg|webp|bmp|tiff?|eps|pdf|mml|xml|x?html?)", re.IGNORECASE)
#: One alt text on at least this many formulas, and on at least half of them, is a placeholder.
REPEATED_MIN = 10
REPEATED_SHARE = 0.5
_WORDY = re.compile(r"[^\W\d_]{3,}")


def is_placeholder(text: str) -> bool:
    """Whether an alt text says nothing about what it stands for."""
    text = " ".join(text.split())
    if not text:
        return True
    if _FILE_NAME.fullmatch(text):
        return True
    folded = norm(text)
    if folded in _PLACEHOLDERS:
        return True
    numbered = _NUMBERED.fullmatch(folded)
    return bool(numbered and numbered.group("word").strip() in _PLACEHOLDERS)


_ALTTEXT = re.compile(rb"""\balttext\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def alttexts(documents: Iterable[bytes]) -> Counter[str]:
    """How often each formula alt text appears in the documents, found without parsing them."""
    counts: Counter[str] = Counter()
    for data in documents:
        for m in _ALTTEXT.finditer(data):
            raw = (m.group(1) if m.group(1) is not None else m.group(2)).decode("utf-8", "replace")
            text = " ".join(html.unescape(raw).split())
            if text:
                counts[text] += 1
    return counts


def repeated_alttexts(counts: Counter[str]) -> frozenset[str]:
    """Alt texts put on most formulas of a book: one phrase for every formula is no description.
    Only wordy ones count (a book may well write "x" for many of its formulas)."""
    total = sum(counts.values())
    return frozenset(
        text for text, n in counts.items()
        if n >= REPEATED_MIN and n >= total * REPEATED_SHARE and _WORDY.search(text)
    )  # fmt: skip

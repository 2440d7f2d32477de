"""The message catalogue: every reader-visible word under one key, in English and Chinese."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from crmnb.present import words

ROOT = Path(__file__).resolve().parents[1]


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_message_has_both_languages_with_the_same_placeholders():
    cat = words.catalogue()
    assert len(cat) > 200
    for key, texts in cat.items():
        assert set(texts) == set(words.LANGUAGES), f"{key}: languages {sorted(texts)}"
        assert _fields(texts["en"]) == _fields(texts["zh"]), f"{key}: placeholders differ between en and zh"


def test_chinese_texts_are_chinese_where_english_ones_are_words():
    """A zh text that repeats a long English one is an untranslated message."""
    for key, texts in words.catalogue().items():
        en, zh = texts["en"], texts["zh"]
        if re.search(r"[A-Za-z]{4,} [A-Za-z]{4,}", en) and not key.startswith("column."):
            assert zh != en, f"{key}: the Chinese text is the English one"


def test_message_keys_used_in_the_code_are_in_the_catalogue():
    """Every t("…") and word("…") key written in crmnb/ and the notebooks exists."""
    used = set()
    sources = [p.read_text(encoding="utf-8") for p in (ROOT / "crmnb").rglob("*.py")]
    sources += [p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb")]
    for src in sources:
        used |= set(re.findall(r"\bt\(\s*\\?[\"']([a-z_]+\.[\w.]+)\\?[\"']", src))
        used |= {f"report.{k}" for k in re.findall(r"\bword\(\s*[\"'](\w+)[\"']", src)}
    missing = sorted(k for k in used if not words.has(k))
    assert not missing, f"message keys used but not in the catalogue: {missing}"


def test_a_key_in_two_files_or_without_a_language_is_refused(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("x.one: {en: One, zh: 一}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("x.one: {en: One again, zh: 又一}\n", encoding="utf-8")
    monkeypatch.setattr(words, "CATALOGUE_DIR", tmp_path)
    words.catalogue.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"b.yaml: message 'x.one' is also in a.yaml"):
            words.catalogue()
        (tmp_path / "b.yaml").write_text("x.two: {en: Two}\n", encoding="utf-8")
        words.catalogue.cache_clear()
        with pytest.raises(ValueError, match=r"b.yaml: message 'x.two' has no zh text"):
            words.catalogue()
    finally:
        words.catalogue.cache_clear()


def test_unknown_key_and_language_are_named():
    with pytest.raises(KeyError, match="no message 'report.nope'"):
        words.t("report.nope", "en")
    with pytest.raises(ValueError, match="language must be one of en, zh, not 'fr'"):
        words.t("report.summary", "fr")
    assert words.t("report.summary", "zh") == "执行摘要"


def test_placeholders_are_filled(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(
        "x.title: {en: 'Funnel {start} – {end}', zh: '漏斗（{start} 至 {end}）'}\n", encoding="utf-8"
    )
    monkeypatch.setattr(words, "CATALOGUE_DIR", tmp_path)
    words.catalogue.cache_clear()
    try:
        assert words.t("x.title", "zh", start="7月", end="12月") == "漏斗（7月 至 12月）"
        with pytest.raises(KeyError):
            words.t("x.title", "en", start="July")
    finally:
        words.catalogue.cache_clear()

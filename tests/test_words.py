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


def _sources() -> list[str]:
    """Return the text of every module in crmnb/ and every notebook."""
    sources = [p.read_text(encoding="utf-8") for p in (ROOT / "crmnb").rglob("*.py")]
    return sources + [p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb")]


def test_message_keys_used_in_the_code_are_in_the_catalogue():
    """Every t("…"), tr("…") and word("…") key written in crmnb/ and the notebooks exists."""
    used = set()
    for src in _sources():
        used |= set(re.findall(r"\btr?\(\s*\\?[\"']([a-z_]+\.[\w.]+)\\?[\"']", src))
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


def test_notebooks_word_charts_by_key():
    """A notebook's tr("…") names a catalogue key, never an English text to look up."""
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for text in re.findall(r"\btr\(\s*\\\"((?:[^\"\\]|\\[^\"])*)\\\"", nb.read_text(encoding="utf-8")):
            assert words.has(text), f"{nb.name}: tr({text!r}) is not a catalogue key"


def test_every_chart_message_is_used():
    """A chart message no code or notebook names is a leftover (legend entries are looked up by value)."""
    code = "\n".join(_sources())
    unused = [
        k for k in words.catalogue() if k.startswith("chart.") and not k.startswith("chart.legend.") and k not in code
    ]
    assert not unused, f"chart messages nothing uses: {unused}"


def test_no_process_wide_language():
    """Every function that writes words is given the language: the package holds no global one."""
    for name in ("language", "set_language", "say", "phrase"):
        assert not hasattr(words, name), f"crmnb.present.words.{name} is the old global-language way"
    import ast

    for path in (ROOT / "crmnb").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "crmnb.present.words":
                old = {a.name for a in node.names} & {"language", "set_language", "say", "phrase"}
                assert not old, f"{path.relative_to(ROOT)}:{node.lineno} imports {old}"


def test_display_and_translator_are_bound_to_one_language():
    import pandas as pd

    from crmnb.present.display import Display

    df = pd.DataFrame({"stage": ["won"] * 45})
    zh, en = Display("zh").table(df), Display("en").table(df)
    assert "成交" in zh._repr_html_() and "另有 5 行见Excel工作簿。" in zh._repr_html_()
    assert ">won<" in en._repr_html_() and "5 more rows in the workbook." in en._repr_html_()
    assert repr(Display("zh").text("一", heading="主要发现")) == "主要发现\n一"
    assert words.translator("zh")("chart.trend.target", value="35%") == "目标 35%"
    assert words.translator("en")("chart.trend.target", value="35%") == "target 35%"
    with pytest.raises(ValueError, match="not 'fr'"):
        Display("fr")
    with pytest.raises(ValueError, match="not 'fr'"):
        words.translator("fr")

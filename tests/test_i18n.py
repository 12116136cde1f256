"""The language files (ui/locales/<code>.json): each has every English key with the same placeholders,
and a new language is one more file."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from ui import i18n

FIELD = re.compile(r"{(\w*)")
MAY_BE_EMPTY = {"disp.col_verdict", i18n.GAP_KEY}  # a column with no heading; no gap between sentences


def _files() -> dict[str, dict[str, str]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(i18n.LOCALES.glob("*.json"))}


def test_the_languages_are_the_files_in_the_folder_each_naming_itself():
    files = _files()
    assert set(files) >= {"en", "ja"}
    assert list(i18n.LANGUAGES)[0] == i18n.DEFAULT_LANGUAGE and set(i18n.LANGUAGES) == set(files)
    assert i18n.LANGUAGES == {code: files[code][i18n.NAME_KEY] for code in i18n.LANGUAGES}
    assert i18n.LANGUAGES["en"] == "English" and i18n.LANGUAGES["ja"] == "日本語"


@pytest.mark.parametrize("code", sorted(p.stem for p in i18n.LOCALES.glob("*.json")))
def test_every_language_has_exactly_the_english_keys_with_the_same_placeholders(code):
    table = _files()[code] if code != i18n.DEFAULT_LANGUAGE else i18n.STRINGS
    lacking, extra = sorted(set(i18n.STRINGS) - set(table)), sorted(set(table) - set(i18n.STRINGS))
    assert not lacking, f"{code}.json lacks {lacking}"
    assert not extra, f"{code}.json has keys that English has not: {extra}"
    for key, english in i18n.STRINGS.items():
        assert table[key].strip() or key in MAY_BE_EMPTY, (code, key)
        assert set(FIELD.findall(table[key])) == set(FIELD.findall(english)), (code, key)


def test_english_of_the_engine_is_written_once_in_dapt_core():
    """en.json leaves out the workspace's errors, skip reasons and the check's advice: their English is
    dapt_core's (studio.messages, engine.feasibility), added when the files are read."""
    english_file = _files()[i18n.DEFAULT_LANGUAGE]
    engine = i18n.engine_english()
    assert engine and not set(engine) & set(english_file)
    assert all(i18n.STRINGS[key] == text for key, text in engine.items())
    assert set(engine) <= set(_files()["ja"])


def test_a_new_language_is_one_file_and_a_missing_key_shows_in_english(tmp_path, monkeypatch):
    for path in i18n.LOCALES.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    xx = dict(_files()["ja"], **{i18n.NAME_KEY: "Testish", "nav.inspect": "Inspekt {x}"})
    del xx["nav.tune"]
    (tmp_path / "xx.json").write_text(json.dumps(xx, ensure_ascii=False), encoding="utf-8")

    texts = i18n.load_texts(tmp_path)
    assert list(texts) == ["en", "ja", "xx"]
    monkeypatch.setattr(i18n, "TEXTS", texts)
    monkeypatch.setattr(i18n, "LANGUAGES", {code: table[i18n.NAME_KEY] for code, table in texts.items()})
    assert i18n.LANGUAGES["xx"] == "Testish"
    assert i18n.t("nav.projects", lang="xx") == i18n.t("nav.projects", lang="ja") == "プロジェクトとデータ"
    assert i18n.t("nav.tune", lang="xx") == "Tune"  # missing: English
    assert i18n.t("nav.inspect", lang="xx") == "Inspect"  # a placeholder English does not fill: English
    assert i18n.t("data.moved", lang="xx", n=1, name="a") == i18n.t("data.moved", lang="ja", n=1, name="a")
    assert i18n.join_sentences(["一。", "二。"], "xx") == "一。二。"  # the gap is the file's too


def test_a_language_file_must_be_a_flat_object_of_strings(tmp_path):
    shutil.copy(i18n.LOCALES / "en.json", tmp_path / "en.json")
    (tmp_path / "xx.json").write_text(json.dumps({"nav": {"tune": "Tune"}}), encoding="utf-8")
    with pytest.raises(ValueError, match="xx.json"):
        i18n.load_texts(tmp_path)

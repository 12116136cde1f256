"""Every user-facing string of the app and the report, by key, in one file per language.

    t("tune.start")                          -> "Start tuning" / "調整を開始"
    t("data.moved", n=3, name="scratch")     -> placeholders are str.format fields

A language is one file, ui/locales/<code>.json: a flat JSON object of key -> text, whose "lang.name" is
the language's own name for the switch. Adding a language is adding its file (tests/test_i18n.py checks
that it has every English key, with the same placeholders); a key a language lacks shows in English.
(Plotly's own chart-toolbar words are apart, in ui/charts.py, in Japanese only: elsewhere Plotly's English.)
In a template, "{n|image|images}" is the first word when the parameter n is 1, else the second.

The language is the session's (the sidebar switch; also kept in the URL as ?lang=ja so a
refresh keeps it). Messages of errors raised by dapt_core carry English text. The workspace's errors
and skipped-file reasons have codes: their English is dapt_core.studio.messages' (written once, there;
so is the check's advice, dapt_core.engine.feasibility.ADVICE), added to en.json's strings here, and
their translations are in the other files; the image checks' reasons and the split's notes have no
codes and are recognised by their wording (engine_text), anything else the engine says is shown as it is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dapt_core.engine.feasibility import ADVICE
from dapt_core.studio.messages import ERRORS, SKIP_REASONS

LOCALES = Path(__file__).with_name("locales")
DEFAULT_LANGUAGE = "en"
NAME_KEY = "lang.name"  # each file's own name for its language, as the switch shows it
GAP_KEY = "lang.sentence_gap"  # what stands between two sentences in the language: " " or ""
LANG_KEY = "lang"
SWITCH_KEY = "lang-switch"


def engine_english() -> dict[str, str]:
    """The strings whose English dapt_core holds (en.json does not repeat them), by key."""
    return {**{f"error.{code}": text for code, text in ERRORS.items()},
            **{f"skip.{code}": text for code, text in SKIP_REASONS.items()},
            **{f"feas.advice.{code}": text for code, text in ADVICE.items()}}


def load_texts(folder: Path = LOCALES) -> dict[str, dict[str, str]]:
    """Every language file in `folder` as {code: {key: text}}, English first (with dapt_core's English
    added), the others by code."""
    texts = {}
    for path in sorted(folder.glob("*.json")):
        table = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ValueError(f"{path} must be one JSON object of strings (key: text)")
        texts[path.stem] = table
    texts[DEFAULT_LANGUAGE] = {**texts[DEFAULT_LANGUAGE], **engine_english()}
    return {code: texts[code] for code in sorted(texts, key=lambda code: (code != DEFAULT_LANGUAGE, code))}


TEXTS: dict[str, dict[str, str]] = load_texts()  # language code -> key -> text
STRINGS: dict[str, str] = TEXTS[DEFAULT_LANGUAGE]  # every key, with its English
LANGUAGES: dict[str, str] = {code: table.get(NAME_KEY) or code for code, table in TEXTS.items()}


def join_sentences(sentences, lang: str | None = None) -> str:
    """Sentences in a row, with the language's own gap between them ("lang.sentence_gap": a space between
    English ones, none between Japanese ones, which end in 。)."""
    lang = lang if lang in LANGUAGES else current_language()
    gap = TEXTS[lang].get(GAP_KEY, STRINGS[GAP_KEY])
    return gap.join(s.strip() for s in sentences if s)


def current_language() -> str:
    try:
        import streamlit as st

        lang = st.session_state.get(LANG_KEY)
        if lang not in LANGUAGES:
            lang = st.query_params.get("lang")
        return lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    except Exception:  # outside a Streamlit run (library tests, report scripts)
        return DEFAULT_LANGUAGE


# "{n|image|images}" in a template: the first word when the parameter n is 1, else the second.
_PLURAL = re.compile(r"\{(\w+)\|([^|{}]*)\|([^|{}]*)\}")


def _plurals(template: str, params: dict) -> str:
    return _PLURAL.sub(lambda m: m.group(2) if params.get(m.group(1)) in (1, "1") else m.group(3), template)


def t(key: str, lang: str | None = None, **params) -> str:
    """The string `key` in `lang` (default: the session's), with `params` filled in."""
    lang = lang if lang in LANGUAGES else current_language()
    english = STRINGS.get(key)
    if english is None:
        return key  # a missing key shows itself instead of crashing a page (tests catch it)
    template = _plurals(TEXTS[lang].get(key) or english, params)  # a key the language lacks: English
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return _plurals(english, params).format_map(_Lenient(params))


class _Lenient(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def error_text(error: BaseException, lang: str | None = None, *, markdown: bool = False) -> str:
    """A user-facing message for an error: translated when it has a known code, else its text. `markdown`:
    for Streamlit's Markdown, with the names in it (and an uncoded message) shown as typed (ui.plain_text)."""
    from ui.plain_text import as_text

    code = getattr(error, "code", None)
    if code and f"error.{code}" in STRINGS:
        params = getattr(error, "params", None) or {}
        if markdown:
            params = {key: as_text(value) if isinstance(value, str) else value for key, value in params.items()}
        return t(f"error.{code}", lang=lang, **params)
    return t("error.engine", lang=lang, message=as_text(error) if markdown else str(error))


def skipped_reason(skipped, lang: str | None = None) -> str:
    """The reason a file was not used, translated where the workspace gave a code."""
    key = f"skip.{skipped.code}"
    if key in STRINGS:
        return t(key, lang=lang, **{"reason": engine_text(skipped.reason, lang), **(skipped.params or {})})
    return skipped.reason


# The image checks' reasons (dapt_core.data.images) and the split's notes (dapt_core.data.folders), which
# carry no code: recognised by their wording.
# A decoder's own detail ({detail}) is passed on as it is.
_ENGINE_REASONS = [(re.compile(pattern), key) for pattern, key in (
    (r"is a folder, not an image file", "reason.folder"),
    (r"file not found", "reason.not_found"),
    (r"cannot read file: (?P<detail>.*)", "reason.unreadable"),
    (r"empty file", "reason.empty"),
    (r"too large: (?P<w>\d+)x(?P<h>\d+) pixels exceeds the limit of (?P<limit>[\d,]+); downscale it",
     "reason.too_large_wh"),
    (r"too large: (?P<n>[\d,]+) pixels exceeds the limit of (?P<limit>[\d,]+); downscale it", "reason.too_large_n"),
    (r"too large: the image exceeds the limit of (?P<limit>[\d,]+); downscale it", "reason.too_large"),
    (r"too large to decode: (?P<w>\d+)x(?P<h>\d+) pixels need about (?P<need>[\d,]+) MB of memory, more than the "
     r"(?P<budget>[\d,]+) MB allowed; downscale it or save it as JPEG", "reason.over_budget"),
    (r"corrupt image: (?P<detail>.*)", "reason.corrupt"),
    (r"truncated or corrupt (?P<format>\S+): (?P<detail>.*)", "reason.truncated"),
    (r"image has no pixels", "reason.no_pixels"),
    (r"unsupported colour mode (?P<mode>.*)", "reason.colour_mode"),
    (r"corrupt (?P<format>.+) file: its header cannot be read", "reason.bad_header"),
    (r"unsupported format (?P<format>.+); save it as (?P<formats>.+)", "reason.unsupported"),
    (r"not an image \(looks like a web page saved under an image name\)", "reason.web_page"),
    (r"not an image \(looks like a text file\)", "reason.text_file"),
    (r"not an image, or not a supported format \((?P<formats>.+)\)", "reason.unknown_format"),
    # how the training photos were drawn (dapt_core.data.folders), shown as notes
    (r"class '(?P<cls>.+)' has (?P<n>\d+) images?: (?P<k>\d+) of them train and the rest are kept for testing "
     r"\(at most half of a class trains when it has no test images of its own\)", "note.half_trains"),
    (r"class '(?P<cls>.+)' has only (?P<n>\d+) training images?, fewer than the (?P<shots>\d+) shots asked; all of "
     r"them are used", "note.fewer_than_shots"),
    (r"no test images for any class, so accuracy cannot be measured", "note.no_test"),
    (r"no test images for any class, so accuracy cannot be measured \(without a shots number every image is used "
     r"for training\)", "note.no_test_no_shots"),
    (r"class '(?P<cls>.+)' has no test images, so its accuracy cannot be measured", "note.class_no_test"),
)]


def engine_text(reason: str, lang: str | None = None) -> str:
    """An image check's reason or a split's note, in `lang` (the English as it is; one not recognised too)."""
    lang = lang if lang in LANGUAGES else current_language()
    if lang == DEFAULT_LANGUAGE or not reason:
        return reason
    for pattern, key in _ENGINE_REASONS:
        found = pattern.fullmatch(reason)
        if found:
            params = found.groupdict()
            if "formats" in params:  # "JPEG, PNG, WebP, GIF, BMP or TIFF": a Japanese list has no "or"
                params["formats"] = re.sub(r",\s*|\s+or\s+", "、", params["formats"])
            return t(key, lang=lang, **params)
    return reason


def streamlit_words_css(lang: str, upload_limit_mb: int) -> str:
    """CSS that shows Streamlit's own built-in words (the file uploader's button and size limit,
    the "Press Enter" hint under text fields) in `lang`; empty for English, which they already are.

    Streamlit offers no parameter or setting for these words (streamlit/streamlit#13500), so
    the English text is shrunk to nothing and the translation drawn in its place."""
    if lang == DEFAULT_LANGUAGE:
        return ""
    replaced = {
        '[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p':
            t("streamlit.upload", lang=lang),
        '[data-testid="stFileUploaderDropzoneInstructions"] span':
            t("streamlit.upload_limit", lang=lang, mb=upload_limit_mb),
        '[data-testid="InputInstructions"]': t("streamlit.press_enter", lang=lang),
    }
    rules = [f"{selector}{{font-size:0 !important}}"
             f"{selector}::after{{content:\"{text}\";font-size:14px}}" for selector, text in replaced.items()]
    # The full-screen button Streamlit adds to every chart's mode bar: its tooltip is Plotly's
    # [data-title]::after, whose text is replaced (Plotly's own buttons: ui.charts.plotly_config).
    for title, key in (("Fullscreen", "streamlit.fullscreen"), ("Close fullscreen", "streamlit.close_fullscreen")):
        rules.append(f'.js-plotly-plot .plotly .modebar-btn[data-title="{title}"]::after'
                     f'{{content:"{t(key, lang=lang)}" !important}}')
    return "<style>" + "".join(rules) + "</style>"


def language_switch(container) -> None:
    """The sidebar language switch. The choice lives in a plain session key (which survives page
    changes, unlike a widget's own state) and in the URL (which survives a refresh)."""
    import streamlit as st

    if st.session_state.get(LANG_KEY) not in LANGUAGES:
        wanted = st.query_params.get("lang")
        st.session_state[LANG_KEY] = wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE

    def _chosen():
        picked = st.session_state.get(SWITCH_KEY)
        if picked in LANGUAGES:  # a click on the selected option empties the control: keep the language
            st.session_state[LANG_KEY] = picked

    st.session_state[SWITCH_KEY] = st.session_state[LANG_KEY]
    container.segmented_control(STRINGS["lang.label"], list(LANGUAGES), format_func=LANGUAGES.get, key=SWITCH_KEY,
                                selection_mode="single", on_change=_chosen)
    if st.query_params.get("lang") != st.session_state[LANG_KEY]:
        st.query_params["lang"] = st.session_state[LANG_KEY]

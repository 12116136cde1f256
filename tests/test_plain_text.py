"""ui/plain_text.py: a name escaped for Streamlit's Markdown reads back as the name and leaves no syntax active.
(tests/test_app_names.py checks the same names in Chromium, on every page and in the report.)"""

from __future__ import annotations

import re
import string

import pytest

from ui.plain_text import WORD_JOINER, as_text, in_code_span, name_writer

PAYLOADS = [
    "![beacon](http://127.0.0.1:8000/beacon.png)",
    "[click](http://127.0.0.1:8000/link)",
    "**bold** _italic_ ~~struck~~ `code`",
    ":red[x] :material/home: :smile:",
    "$x^2$ and $$y$$",
    "<img src=x onerror=alert(1)>",
    "# heading",
    "1. list",
    "> quote",
    "a | b | c",
    "&amp; &#58;",
    "- item",
    "2. item",
    "back\\slash \\*",
    "www.example.com",
    "傷 (scratch) 100%",
]


def read_back(escaped: str) -> str:
    """What Markdown shows for text made only of escapes, joiners and plain characters."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", escaped).replace(WORD_JOINER, "")


@pytest.mark.parametrize("name", PAYLOADS)
def test_an_escaped_name_reads_back_as_the_name(name):
    assert read_back(as_text(name)) == name


ACTIVE = set("\\`*_[]<>#|~$&")  # what starts Markdown anywhere in a line


@pytest.mark.parametrize("name", PAYLOADS)
def test_no_markdown_character_is_left_unescaped(name):
    escaped = as_text(name)
    index = 0
    while index < len(escaped):
        char = escaped[index]
        if char == "\\":
            assert escaped[index + 1] in string.punctuation, escaped  # an escape, never a lone backslash
            index += 2
            continue
        assert char not in ACTIVE, (char, escaped)
        index += 1


@pytest.mark.parametrize("name", ["- item", "+ item", "12. item", "3) item", "  - indented"])
def test_a_name_that_would_start_a_list_does_not(name):
    escaped = as_text(name)
    assert re.match(r"^\s*(\d+\\[.)]|\\[-+])", escaped), escaped
    assert read_back(escaped) == name


def test_shortcodes_and_bare_links_are_broken_by_invisible_joiners():
    escaped = as_text(":material/home: :smile: www.example.com")
    assert not re.search(r":[\w/\\-]+:", escaped.replace("\\", ""))  # no ":name:" left for Streamlit to replace
    assert "www\\." not in escaped and "www" + WORD_JOINER in escaped
    assert escaped.count(WORD_JOINER) == 3  # after the colons that open a shortcode, and after "www"
    assert as_text("Result: ok") == "Result: ok"  # a colon before a space opens nothing


def test_an_e_mail_address_is_no_link_and_a_code_span_keeps_its_text():
    assert "@" + WORD_JOINER in as_text("aiko@example.org")
    assert in_code_span("ViT-B-16:/data/my_weights.pt") == "ViT-B-16:/data/my_weights.pt"  # nothing escaped
    assert "`" not in in_code_span("a`b\nc") and "\n" not in in_code_span("a\nb")


def test_the_report_gets_names_as_they_are_and_the_pages_escaped():
    assert name_writer(False)("**b**") == "**b**" and name_writer(True)("**b**") == "\\*\\*b\\*\\*"


def test_a_name_stays_on_one_line_and_plain_words_are_untouched():
    assert "\n" not in as_text("first line\n# second")
    assert as_text("no defect") == "no defect" and as_text("傷あり") == "傷あり"
    assert as_text("a*") == "a\\*"
    assert as_text("Class 'dent' (2).png") == "Class 'dent' (2).png"  # nothing inert is escaped

"""Names people type (projects, classes, files, runs, accounts) shown as the text they typed, never as Markdown.

Streamlit renders Markdown in st.markdown, st.caption, st.header, alerts, toasts, progress and spinner texts,
image captions, and in the labels of buttons, expanders, tabs, radios, metrics and other widgets. A name such
as "![x](http://host/beacon.png)" would otherwise make every visitor's browser fetch that address, and
"**bold**", ":red[x]" or "$x^2$" would change how the name looks. Every name (or a sentence holding one) that
reaches such an element goes through `as_text` first; elements that show plain text (select box options,
data frame cells, text inputs, Plotly charts) take the name as it is.

    st.caption(t("common.project_caption", name=as_text(project.name)))
"""

from __future__ import annotations

import re

# The characters that start Markdown anywhere in a line, escaped with a backslash (CommonMark lets a backslash
# escape any ASCII punctuation character, which then stands for itself): links and images ([ ]), emphasis and
# strike-through (* _ ~), code (`), HTML and entities (< > &), tables (|), LaTeX ($), headings (#) and the
# backslash itself. Quotes, parentheses, dots and slashes do nothing without these, so names keep them as
# typed (and stay readable wherever the escaped text is compared, as the app's tests do).
_MARKDOWN_CHARACTERS = re.compile(r"([\\`*_\[\]<>#|~$&])")
# What starts a block only at the beginning of a line: a list ("- ", "+ ", "1. ", "2) ") or a heading underline.
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])")
# Streamlit replaces icon and emoji shortcodes (":material/home:", ":smile:") in the text after Markdown is
# parsed, when a backslash has already turned "\:" back into ":" (seen in Chromium: "\:material/home\:" still
# draws the icon), and so do colour directives (":red[...]"). An invisible word joiner after each colon that
# could open one (one not followed by a space) keeps any of them from matching.
WORD_JOINER = "\u2060"
_OPENING_COLON = re.compile(r":(?=\S)")
# GitHub Markdown turns a bare "www.host" and "name@host.org" into links; a joiner after "www" and after "@"
# stops them ("http:" has one already).
_BARE_WWW = re.compile(r"(?i)\b(www)(?=\.)")


def as_text(name: object) -> str:
    """`name` escaped so that Streamlit's Markdown shows it literally, on one line."""
    text = " ".join(str(name).splitlines())  # a line break would end a heading or start a new paragraph
    text = _MARKDOWN_CHARACTERS.sub(r"\\\1", text)
    text = _LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
    text = _OPENING_COLON.sub(":" + WORD_JOINER, text).replace("@", "@" + WORD_JOINER)
    return _BARE_WWW.sub(r"\1" + WORD_JOINER, text)


def in_code_span(text: object) -> str:
    """`text` for the inside of a Markdown code span (`...`), where nothing but a backtick is special (a
    backslash there would show): backticks become quotes, lines one line."""
    return " ".join(str(text).replace("`", "'").splitlines())


def name_writer(markdown: bool):
    """How a sentence shared by the pages and the report writes a name: `as_text` for Streamlit's Markdown,
    as it is for the HTML report (which escapes every text itself)."""
    return as_text if markdown else str

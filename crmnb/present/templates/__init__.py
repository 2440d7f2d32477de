"""The report's and the index page's Jinja2 templates with their style sheets, and the environment rendering them.

Text is escaped (autoescaping is on for every template but the style sheets, whose font names keep
their quotes). In the ``.html.j2`` templates a line break and the indentation after it are only for
reading and are dropped: a page comes out as its markup written on one line. An empty line stands
for one line break in the page.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jinja2
from jinja2.ext import Extension

TEMPLATE_DIR = Path(__file__).parent
"""Where the templates and style sheets are (package data of ``crmnb.present``)."""

_BREAKS = re.compile(r"\n[ \t]*((?:\n[ \t]*)*)")


class JoinLines(Extension):
    """Drop the line breaks of an HTML template's source; keep one for each run of empty lines."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        """Return the template's source with its lines joined, unless it is a style sheet."""
        if not (name or "").endswith(".html.j2"):
            return source
        return _BREAKS.sub(lambda m: "\n" if m.group(1) else "", source)


@functools.cache
def environment() -> jinja2.Environment:
    """Return the one Jinja2 environment of the templates, built on first use."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(disabled_extensions=("css",), default_for_string=True, default=True),
        extensions=[JoinLines],
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render(name: str, **context: object) -> str:
    """Return the template ``name`` rendered with ``context``."""
    return environment().get_template(name).render(**context)


def html_lang(lang: str) -> str:
    """Return the page's ``lang`` attribute for a report language.

    >>> html_lang("zh"), html_lang("en")
    ('zh-CN', 'en')
    """
    return "zh-CN" if lang == "zh" else "en"

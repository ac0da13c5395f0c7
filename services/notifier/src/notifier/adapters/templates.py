"""Jinja2 message templates, packaged with the notifier (`notifier/templates/<lang>/`).

Each message is one file, `<lang>/<name>.j2`, with two blocks: `subject` (one line; the request
key is put in front of it here, `[SPT-1042] ...`) and `message` (paragraphs separated by blank
lines). The message is rendered twice, as plain text and HTML-escaped, and wrapped by the
language's layouts (`layout.txt.j2`, `layout.html.j2`), which greet the recipient and say how
to answer. `link(url)` in a template is the bare URL in text and an anchor in HTML.
Templates are compiled once per process, the first time each is used, and kept: they ship with
the package, so they are never checked for changes (no file is read or even looked at again),
and which ones exist is listed once at start; rendering does no I/O.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from notifier.domain.content import Rendered

FALLBACK = "generic"
BLANK_LINES = re.compile(r"\n{3,}")
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _text_link(url: str, label: str | None = None) -> str:
    return url if label is None else f"{label}: {url}"


def _html_link(url: str, label: str | None = None) -> Markup:
    return Markup('<a href="{0}">{1}</a>').format(url, label or url)


def _date(value: Any, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    return str(value.strftime(fmt))


def _paragraphs(html: str) -> Markup:
    parts = [p.strip() for p in PARAGRAPH_BREAK.split(html.strip()) if p.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup(p.replace("\n", "<br>\n"))) for p in parts
    )


class Templates:
    """Renders a named message in a language, as subject, text and HTML."""

    def __init__(self) -> None:
        loader = PackageLoader("notifier", "templates")
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
            "auto_reload": False,  # packaged files: compiled once, never stat'ed again
            "cache_size": -1,  # every template kept (a few dozen)
        }
        self.text = Environment(autoescape=False, **common)  # plain text: nothing to escape
        self.html = Environment(autoescape=True, **common)
        self.text.globals["link"] = _text_link
        self.html.globals["link"] = _html_link
        for env in (self.text, self.html):
            env.filters["date"] = _date
        self.names = frozenset(loader.list_templates())

    def has(self, name: str, language: str) -> bool:
        """Whether the package has the message `name` in `language`."""
        return f"{language}/{name}.j2" in self.names

    def render(
        self, name: str, language: str, context: dict[str, Any], key: str | None
    ) -> Rendered:
        """The message `name` (or the generic one, if there is no such message) worded in
        `language` from `context`; `key` is put in front of the subject."""
        if not self.has(name, language):
            name = FALLBACK
        subject, message = self._blocks(self.text, name, language, context)
        _, message_html = self._blocks(self.html, name, language, context)
        subject = " ".join(subject.split())
        if key:
            subject = f"[{key}] {subject}"
        values = {**context, "subject": subject}
        text = self.text.get_template(f"{language}/layout.txt.j2").render(
            values, message=message.strip()
        )
        text = BLANK_LINES.sub("\n\n", text)
        html = self.html.get_template(f"{language}/layout.html.j2").render(
            values, message=_paragraphs(message_html)
        )
        return Rendered(subject, text, html)

    @staticmethod
    def _blocks(
        env: Environment, name: str, language: str, context: dict[str, Any]
    ) -> tuple[str, str]:
        template = env.get_template(f"{language}/{name}.j2")
        ctx = template.new_context(context)
        subject = "".join(template.blocks["subject"](ctx))
        message = "".join(template.blocks["message"](ctx))
        return subject, message

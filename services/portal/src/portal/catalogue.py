"""The portal's texts in French and English: one Babel message catalogue per language
(`catalogues/<language>.po`, msgids are keys such as `mail.reset.subject`, `{name}` marks a
value filled in), and which language a person reads: the one they chose on the page, else
their profile's, else their browser's."""

from __future__ import annotations

from functools import cache
from importlib import resources

from babel.messages.pofile import read_po

LANGUAGES = ("fr", "en")
DEFAULT = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    """Every text of `language` by its key."""
    with (resources.files("portal") / "catalogues" / f"{language}.po").open("rb") as po:
        read = read_po(po, locale=language, domain="portal")
    return {str(m.id): str(m.string) for m in read if m.id and isinstance(m.string, str)}


def text(language: str, key: str, **values: str) -> str:
    """The text `key` in `language` (English when missing), with `values` filled in."""
    found = catalogue(language if language in LANGUAGES else DEFAULT).get(key)
    if not found:
        found = catalogue(DEFAULT).get(key, key)
    return found.format(**values) if values else found


def negotiate(chosen: str | None, profile: str | None, accept_language: str | None) -> str:
    """The language to answer in (see module)."""
    for candidate in (chosen, profile):
        if candidate in LANGUAGES:
            return str(candidate)
    for part in (accept_language or "")[:200].split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT

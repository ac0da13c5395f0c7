"""The portal's texts in French and English (`catalogues/<language>.yaml`), and which language
a person reads: the one they chose on the page, else their profile's, else their browser's."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

LANGUAGES = ("fr", "en")
DEFAULT = "en"


@cache
def catalogue(language: str) -> dict[str, Any]:
    """Every text of `language`, nested keys flattened with dots (`mail.reset.subject`)."""
    text = (resources.files("portal") / "catalogues" / f"{language}.yaml").read_text("utf-8")
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value

    walk("", yaml.safe_load(text))
    return flat


def text(language: str, key: str, **values: str) -> str:
    """The text `key` in `language` (English when missing), with `values` filled in."""
    found = catalogue(language if language in LANGUAGES else DEFAULT).get(key)
    if found is None:
        found = catalogue(DEFAULT).get(key, key)
    return str(found).format(**values) if values else str(found)


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

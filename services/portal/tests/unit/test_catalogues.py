"""Both languages say everything: the French and English catalogues have the same keys, and
every text a template or the mailer names exists."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from portal.adapters.mailer import PAGES
from portal.catalogue import catalogue, negotiate, text


def test_french_and_english_have_the_same_texts() -> None:
    assert set(catalogue("fr")) == set(catalogue("en"))


def test_every_text_the_templates_name_exists() -> None:
    named = set()
    folder = Path(str(resources.files("portal") / "templates"))
    for template in folder.rglob("*.html"):  # the console's are in a folder of their own
        named |= set(re.findall(r"\bt\('([a-z_.0-9]+)'", template.read_text("utf-8")))
    named |= {f"mail.{kind}.{part}" for kind in PAGES for part in ("subject", "body")}
    assert named - set(catalogue("en")) == set()


def test_the_language_is_the_chosen_one_then_the_profile_then_the_browser() -> None:
    assert negotiate("fr", "en", "en-GB") == "fr"
    assert negotiate(None, "fr", "en-GB") == "fr"
    assert negotiate(None, None, "de-CH, fr;q=0.8, en;q=0.5") == "fr"
    assert negotiate("xx", None, None) == "en"
    assert text("fr", "welcome", name="Léa") == "Bienvenue, Léa"

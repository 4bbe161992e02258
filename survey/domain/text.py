"""Cleaning of what staff type or import: names, labels, reasons, logins."""

from __future__ import annotations

import unicodedata

# Unicode categories dropped from names: controls (C0, C1, NUL), formatting characters
# (zero-width spaces and joiners, bidi overrides, soft hyphen, BOM), lone surrogates,
# private use. They print as nothing or reorder text, and XLSX cannot hold the controls.
DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co"}


def clean(text: str | None) -> str:
    """NFC, no control or invisible formatting characters, single spaces, no edge spaces.

    Excel and some keyboards give decomposed letters; copy-paste brings zero-width and
    direction marks; both would make two equal-looking names differ.
    """
    if not text:
        return ""
    kept = []
    for char in text:
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in DROPPED_CATEGORIES:
            kept.append(char)
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).split())

"""The methods note an analyst cites, and small helpers the estimators rely on."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np

import analysis
from analysis.design import unique_codes

METHODS = Path(analysis.__file__).resolve().parent / "METHODS.md"


def test_methods_note_is_bilingual_nfc_and_names_the_methods():
    text = METHODS.read_text(encoding="utf-8")
    assert unicodedata.normalize("NFC", text) == text
    for phrase in (
        "Tiếng Việt",
        "English",
        "hậu phân tầng",
        "Tuyến tính hóa Taylor",
        "Taylor linearization",
        "svyciprop",
        "Clopper–Pearson",
        "Kish",
        "N / (1 + N·e²)",
    ):
        assert phrase in text, phrase


def test_public_functions_document_their_method():
    functions = (
        analysis.compute_indices,
        analysis.make_design,
        analysis.ratio,
        analysis.sample_size,
    )
    for function in functions:
        doc = function.__doc__
        assert "Notes\n    -----" in doc, function.__name__
        assert any(name in doc for name in ("Lumley", "Binder", "Cochran")), function.__name__


def test_unique_codes_dense_and_sorted_paths_agree():
    rng = np.random.default_rng(3)
    for span in (50, 10**9):  # counting pass, then the sort for sparse codes
        codes = rng.integers(0, span, 2_000)
        values, any_row, inverse, counts = unique_codes(codes)
        want_values, want_inverse, want_counts = np.unique(
            codes, return_inverse=True, return_counts=True
        )
        np.testing.assert_array_equal(values, want_values)
        np.testing.assert_array_equal(inverse, want_inverse)
        np.testing.assert_array_equal(counts, want_counts)
        np.testing.assert_array_equal(codes[any_row], values)

"""Re-run make_reference.R with R's survey package and check it reproduces the stored values."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .helpers import CONFIGS, EXPECTED, HERE, assert_tables_match, read_table

pytestmark = pytest.mark.r


def _r_with_survey() -> str | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript not found (install Debian r-base-core r-cran-survey)"
    probe = subprocess.run(
        [rscript, "-e", "quit(status = !requireNamespace('survey', quietly = TRUE))"],
        capture_output=True,
    )
    if probe.returncode != 0:
        return "R package survey not installed (Debian r-cran-survey)"
    return None


def test_r_script_reproduces_stored_values(tmp_path):
    reason = _r_with_survey()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        ["Rscript", str(HERE / "reference" / "make_reference.R"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for config in CONFIGS:
        fresh = read_table(tmp_path / f"{config}.csv")
        stored = read_table(EXPECTED / f"{config}.csv")
        assert_tables_match(fresh, stored, atol=1e-9, rtol=1e-9)
    fresh = read_table(tmp_path / "differences.csv")
    stored = read_table(EXPECTED / "differences.csv")
    assert len(fresh) == len(stored) > 0
    for config in ("none", "poststrat"):
        assert_tables_match(
            fresh[fresh["config"] == config].drop(columns="config"),
            stored[stored["config"] == config].drop(columns="config"),
            atol=1e-9,
            rtol=1e-9,
        )

"""Microdata: the page's responses and volumes, downloaded, give the page's numbers offline."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import openpyxl
import pandas as pd
import pytest

from analysis.__main__ import main as analysis_cli
from survey.questionnaires import Registry, default_folder

from .factories import make_volume
from .staff import login, make_user
from .test_reports import add_response

SIPAS = Registry(default_folder()).latest("sipas-service")


@pytest.fixture
def quarter(session, make_counter):
    justice = make_counter()
    health = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy Y tế")
    when = datetime(2026, 8, 3, 2, tzinfo=UTC)
    answers = [(1, 5, 4), (1, 4, 4), (2, 2, 3), (2, 5, 5), (1, 3, 4), (2, 4, None),
               (1, 5, 5), (2, 1, 2), (1, 4, 4), (2, 5, 4), (1, 2, 1), (2, 4, 4)]
    for k, (field, a1, a2) in enumerate(answers):
        counter = justice if k % 3 else health
        values = {"a1": a1} | ({"a2": a2} if a2 is not None else {})
        response = add_response(session, counter, field=field, **values)
        response.submitted_at = when
    # Out of the period: must not be in the download.
    add_response(session, justice, field=1, a1=1, a2=1)
    for c, f, t in ((justice, "1", 400), (justice, "2", 100), (health, "1", 50),
                    (health, "2", 250)):
        make_volume(session, c.agency_id, f, "2026-Q3", t)
    make_user(session, "analyst", "analyst")
    return justice, health


ARGS = "weighting=poststrat&period_kind=quarter&period=2026-Q3"


def test_the_command_line_reproduces_the_page_from_the_downloads(client, quarter, tmp_path):
    login(client, "analyst")
    responses = client.get(f"/reports/responses.csv?{ARGS}")
    volumes = client.get(f"/reports/volumes.csv?{ARGS}")
    assert responses.status_code == 200 and volumes.status_code == 200
    assert "gia-quyen" in responses.headers["Content-Disposition"]
    assert responses.data.startswith("\ufeff".encode())
    (tmp_path / "responses.csv").write_bytes(responses.data)
    (tmp_path / "volumes.csv").write_bytes(volumes.data)
    frame = pd.read_csv(tmp_path / "responses.csv", encoding="utf-8-sig", dtype=str)
    assert len(frame) == 12 and set(frame["period"]) == {"2026-Q3"}
    assert "agency_name" not in frame.columns and "flags" in frame.columns
    out = tmp_path / "indices.csv"
    status = analysis_cli(["indices", str(tmp_path / "responses.csv"),
                           "--questionnaire", SIPAS.source, "--weighting", "poststrat",
                           "--totals", str(tmp_path / "volumes.csv"), "--by", "agency",
                           "-o", str(out)])
    assert status == 0
    offline = pd.read_csv(out, encoding="utf-8-sig")
    page = pd.read_csv(io.BytesIO(client.get(f"/reports/indices.csv?{ARGS}").data),
                       encoding="utf-8-sig")
    page = page[page["by"].isin(["ALL", "agency"])]
    keys = ["by", "agency", "level", "key"]
    merged = page.merge(offline, on=keys, suffixes=("_page", "_cli"), how="outer",
                        indicator=True)
    assert (merged["_merge"] == "both").all()
    for column in ("estimate", "se", "ci_low", "ci_high"):
        pd.testing.assert_series_equal(merged[f"{column}_page"], merged[f"{column}_cli"],
                                       check_names=False, rtol=0, atol=1e-9)
    assert "Sở Y tế" not in volumes.get_data(as_text=True)  # codes, not names


def test_xlsx_microdata_has_a_sheet_of_labels(client, quarter):
    login(client, "analyst")
    response = client.get(f"/reports/responses.xlsx?{ARGS}")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["phieu", "labels"]
    labels = {(row[0], row[1]): row[2] for row in book["labels"].iter_rows(
        min_row=2, values_only=True)}
    assert labels[("agency", "SYT")] == "Sở Y tế"
    assert labels[("field", "2")] == "Đất đai"


def test_agency_user_downloads_only_its_own_responses(client, session, quarter):
    justice, _health = quarter
    make_user(session, "stp", "agency", agency=justice.agency)
    login(client, "stp")
    frame = pd.read_csv(io.BytesIO(client.get(f"/reports/responses.csv?{ARGS}").data),
                        encoding="utf-8-sig", dtype=str)
    assert set(frame["agency"]) == {"STP"}


def test_no_volumes_without_weighting(client, quarter):
    login(client, "analyst")
    assert client.get("/reports/volumes.csv?period=2026-Q3").status_code == 404

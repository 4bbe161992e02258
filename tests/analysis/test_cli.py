"""The command line: the same numbers as the library, errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import analysis
from analysis.__main__ import main

from .helpers import DATA, ROOT, assert_tables_match, element_map, read_table, responses

RESPONSES = str(DATA / "responses.csv")


def test_questionnaire_and_outputs(tmp_path):
    for suffix in ("csv", "xlsx", "json"):
        out = tmp_path / f"t.{suffix}"
        status = main(
            ["indices", RESPONSES, "--questionnaire", str(DATA / "questionnaire.yaml"),
             "--by", "agency,period", "--min-n", "50", "-o", str(out)]
        )  # fmt: skip
        assert status == 0 and out.exists()
    library = analysis.compute_indices(responses(), element_map(), by="agency,period", min_n=50)
    assert_tables_match(read_table(tmp_path / "t.csv"), library, atol=1e-12, rtol=1e-14)
    records = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert len(records) == len(library) == len(pd.read_excel(tmp_path / "t.xlsx"))


def test_module_entry_point_writes_csv_to_stdout():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "indices",
            RESPONSES,
            "--elements",
            str(DATA / "elements.csv"),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("by,level,key,estimate,se,ci_low,ci_high,ci_method,df,n,")
    assert lines[1].startswith("ALL,overall,SIPAS,")
    assert len(lines) == 1 + 1 + 3 + 2 * 7


def test_input_error_exits_2_with_the_cell(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "response_id,a1,a2,a3,b1,b2,c1,c2\nP-1,5,5,5,5,5,5,5\nP-2,5,7,5,5,5,5,5\n", encoding="utf-8"
    )
    status = main(["indices", str(bad), "--elements", str(DATA / "elements.csv")])
    assert status == 2
    err = capsys.readouterr().err
    assert "row 2" in err and "P-2" in err and "a2" in err and "'7'" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--weighting", "poststrat"], "--totals"),
        (["--weighting", "rake"], "--margin"),
        (["--totals", str(DATA / "totals_agency_field.csv")], "only used"),
    ],
)
def test_weighting_options_are_checked(capsys, args, message):
    status = main(["indices", RESPONSES, "--elements", str(DATA / "elements.csv"), *args])
    assert status == 2 and message in capsys.readouterr().err


def test_sample_size_both_formulas(capsys):
    assert main(["sample-size", "--volume", "1000", "--volume", "50", "-e", "5%"]) == 0
    out = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    # n0 = 1.96^2 * 0.25 / 0.05^2 = 384.15; finite: 384.15 / (1 + 383.15/1000) = 277.7
    assert list(out["n_infinite"]) == [385, 385]
    assert list(out["n_finite_population"]) == [278, 45]
    assert list(out["n_yamane"]) == [286, 45]  # 1000 / (1 + 1000 * 0.0025) = 285.7


def test_sample_size_per_agency_from_volumes(tmp_path):
    out = tmp_path / "n.csv"
    status = main(
        ["sample-size", "--volumes", str(DATA / "totals_agency_field.csv"), "--by", "agency",
         "--margin-of-error", "0.1", "-o", str(out)]
    )  # fmt: skip
    assert status == 0
    table = pd.read_csv(out, encoding="utf-8-sig").set_index("agency")
    assert table.loc["Sở Tư pháp", "N"] == 9641
    assert table.loc["UBND xã Sông Hinh", "n_yamane"] == 7  # never above N
    assert (table["n_finite_population"] <= table["N"]).all()


def test_sample_size_at_another_level(capsys):
    """level= and --level: at 90% (z = 1.645) n0 = 1.645^2 * 0.25 / 0.05^2 = 270.6."""
    assert main(["sample-size", "--volume", "1000", "-e", "5%", "--level", "0.9"]) == 0
    out = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(out["n_infinite"]) == [271]
    assert analysis.sample_size(1000, 0.05, level=0.9)["n_infinite"].iloc[0] == 271


def test_sample_size_rejects_bad_margin(capsys):
    assert main(["sample-size", "--volume", "100", "-e", "1.5"]) == 2
    assert "margin of error" in capsys.readouterr().err


def test_sample_size_matches_the_published_interval(capsys):
    """n = 45 of 50 must not promise +-5 points: the published interval is about +-15."""
    plan = analysis.sample_size(50, 0.05).iloc[0]
    assert plan["n_finite_population"] == 45 and not plan["reachable"]
    frame = pd.DataFrame({"q1": [5] * 22 + [2] * 23, "q2": 4, "q3": 4})
    table = analysis.compute_indices(frame, {"A": ["q1", "q2"], "B": ["q3"]})
    q1 = table[(table["level"] == "criterion") & (table["key"] == "q1")].iloc[0]
    half = (q1["ci_high"] - q1["ci_low"]) / 2
    assert half > 14 and abs(half - plan["margin_at_n_finite_population"]) < 0.5
    # n_needed does deliver +-5 points in the published interval
    n = int(plan["n_needed"])
    assert analysis.sample_size(10_000, 0.05)["n_needed"].iloc[0] == n
    from analysis.sample_size import published_margin

    assert published_margin(n) <= 0.05 < published_margin(n - 1)
    # design effect and response rate
    more = analysis.sample_size(10_000, 0.05, design_effect=2.0, response_rate=0.5).iloc[0]
    assert more["n_needed"] > 1.9 * n and more["n_to_invite"] >= 2 * more["n_needed"] - 1
    assert main(["sample-size", "--volume", "50", "--design-effect", "1.5"]) == 0
    assert "n_needed" in capsys.readouterr().out


def test_a_zero_in_the_totals_is_pooled_and_noted_or_named(tmp_path, capsys):
    totals = analysis.read_totals(DATA / "totals_agency_field.csv")
    totals.loc[(totals["agency"] == "Sở Xây dựng") & (totals["field"] == "Đất đai"), "count"] = 0
    path = tmp_path / "totals.csv"
    totals.to_csv(path, index=False)
    base = ["indices", RESPONSES, "--elements", str(DATA / "elements.csv"),
            "--weighting", "poststrat", "--totals", str(path), "--by", "agency"]  # fmt: skip
    out = tmp_path / "t.csv"
    assert main([*base, "-o", str(out)]) == 0
    notes = pd.read_csv(tmp_path / "t-notes.csv", encoding="utf-8-sig")
    zero = notes[notes["kind"] == "zero_cells_pooled"]
    assert list(zero["scope"]) == ["Sở Xây dựng"] and list(zero["cells"]) == ["field=Đất đai"]
    assert list(zero["responses"]) == [1]
    table = read_table(out)
    assert (table["key"] == "SIPAS").any() and (table["agency"] == "Sở Xây dựng").any()
    capsys.readouterr()
    assert main([*base, "--min-cell-n", "1", "-o", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "agency='Sở Xây dựng', field='Đất đai'" in err and "has a total of 0" in err


def test_flagged_rows_are_left_out_unless_asked_for(tmp_path, capsys):
    """A responses file with the web app's `flags` column (its download): the flagged rows
    count only with --include-flagged, as on the report pages; stderr says what was left."""
    frame = pd.read_csv(RESPONSES, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame["flags"] = ""
    frame.loc[:29, "flags"] = "repeat_client"
    frame.loc[30:34, "flags"] = "fast identical_run"
    path = tmp_path / "with-flags.csv"
    frame.to_csv(path, index=False)
    elements = str(DATA / "elements.csv")
    for args, n in (([], len(frame) - 35), (["--include-flagged"], len(frame))):
        out = tmp_path / f"out{len(args)}.csv"
        assert main(["indices", str(path), "--elements", elements, "-o", str(out), *args]) == 0
        assert read_table(out).iloc[0]["n"] == n
        err = capsys.readouterr().err
        assert ("35 flagged responses left out (fast 5, identical_run 5, repeat_client 30)"
                in err) == (not args)
    clean = tmp_path / "clean.csv"
    frame.drop(columns="flags").to_csv(clean, index=False)
    assert main(["indices", str(clean), "--elements", elements, "-o",
                 str(tmp_path / "c.csv")]) == 0
    assert "flagged" not in capsys.readouterr().err

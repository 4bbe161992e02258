"""Trends over periods, the breakdown per counter and the ranking per agency level."""

from __future__ import annotations

import math

import pandas as pd
from flask_babel import gettext as _

from analysis import AnalysisInputError, compare_periods, compute_indices

from .domain.agencies import LEVEL_LABELS
from .i18n import local_number
from .models import AGENCY_LEVELS

# How many periods of the chosen kind a trend shows (the latest ones).
TREND_PERIODS = 8
# The SVG's geometry (viewBox units): plot area and the label band below it.
CHART = {"width": 640, "left": 44, "right": 16, "top": 18, "height": 180, "axis": 58}


def _elements(questionnaire) -> list[tuple[str, str]]:
    return [(q.id, q.element) for q in questionnaire.criteria]


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def trend_points(frame: pd.DataFrame, questionnaire, min_n: int,
                 periods: int = TREND_PERIODS) -> list[dict]:
    """The overall index (unweighted) in each of the last `periods` periods of the frame,
    with its interval, the small-group flag and the library's test against the previous
    period (compare_periods): ``mark`` is "higher"/"lower" only where it is significant,
    ``comparison`` the one verdict the page and the PDF print (see trend_comparison)."""
    kept = sorted(frame["period"].dropna().unique())[-periods:]
    frame = frame[frame["period"].isin(kept)]
    if len(frame) < 2 or not questionnaire.criteria:
        return []
    elements = _elements(questionnaire)
    try:
        table = compute_indices(frame, elements, by=["period"], min_n=min_n)
        tests = (compare_periods(frame, elements, by=None, min_n=min_n)
                 if len(kept) > 1 else pd.DataFrame(columns=["by", "level", "period"]))
    except AnalysisInputError:
        return []
    rows = table[(table["by"] == "period") & (table["level"] == "overall")]
    tests = tests[(tests["by"] == "ALL") & (tests["level"] == "overall")]
    tests = {row["period"]: row for _i, row in tests.iterrows()}
    points = []
    for _i, row in rows.sort_values("period").iterrows():
        test = tests.get(row["period"])
        few = test is not None and min(test["n"], test["previous_n"]) < min_n
        points.append({
            "period": row["period"], "estimate": _number(row["estimate"]),
            "ci_low": _number(row["ci_low"]), "ci_high": _number(row["ci_high"]),
            "ci_method": row["ci_method"], "note": row["note"], "n": int(row["n"]),
            "small": row["flag"] == "small_n",
            "mark": "" if test is None else test["mark"],
            "previous": None if test is None else test["previous"],
            "diff": None if test is None else _number(test["diff"]),
            "p_adj": None if test is None else _number(test["diff_p_adj"]),
            "comparison": trend_comparison(test, few),
        })
    return points


def trend_comparison(test, few: bool) -> str:
    """The one rule of the trend's verdict: "none" (no earlier period), "small" (either
    period below the small-group size: not compared, whatever p says, as in the ranking),
    "higher"/"lower" (the library's mark), else "same"."""
    if test is None:
        return "none"
    if few:
        return "small"
    return test["mark"] or "same"


def trend_versus(point: dict) -> str:
    """The trend table's "compared with the previous period" cell, for the page and the
    PDF alike: the verdict, and the difference only where a comparison was made."""
    comparison = point.get("comparison", "none")
    if comparison == "none":
        return "–"
    if comparison == "small":
        return _("Không so sánh (ít phiếu)")
    text = {"higher": _("Cao hơn có ý nghĩa thống kê so với kỳ trước"),
            "lower": _("Thấp hơn có ý nghĩa thống kê so với kỳ trước")}.get(
        comparison, _("Không khác biệt có ý nghĩa thống kê so với kỳ trước"))
    diff = point.get("diff")
    if diff is not None:
        text += f" ({local_number(f'{diff:.2f}')})"
    return text


def trend_p(point: dict) -> float | None:
    """The Holm p-value the trend table prints: none for a comparison not made."""
    return None if point.get("comparison") in ("none", "small") else point.get("p_adj")


def trend_chart(points: list[dict]) -> dict:
    """Coordinates of the trend SVG: x per period, y per value (0-100 upwards)."""
    c = CHART
    inner = c["width"] - c["left"] - c["right"]
    step = inner / max(len(points), 1)

    def y(value):
        return c["top"] + c["height"] * (1 - value / 100)

    shapes = []
    for i, point in enumerate(points):
        x = c["left"] + step * (i + 0.5)
        shape = {"x": round(x, 1), "point": point}
        if point["estimate"] is not None:
            shape["y"] = round(y(point["estimate"]), 1)
        if point["ci_low"] is not None and point["ci_high"] is not None:
            shape["bar_top"] = round(y(point["ci_high"]), 1)
            shape["bar_height"] = round(y(point["ci_low"]) - y(point["ci_high"]), 1)
        shapes.append(shape)
    line = " ".join(f"{s['x']},{s['y']}" for s in shapes if "y" in s)
    ticks = [{"value": v, "y": round(y(v), 1)} for v in (0, 25, 50, 75, 100)]
    return {**c, "shapes": shapes, "line": line, "ticks": ticks,
            "bottom": c["top"] + c["height"], "total": c["top"] + c["height"] + c["axis"],
            "rotate": len(points) > 4}


def counter_rows(frame: pd.DataFrame, questionnaire, min_n: int) -> list[dict]:
    """Per counter of an agency's responses: how many, and the overall index (unweighted)
    with its interval and small-group flag (criteria per counter would be too few)."""
    if frame.empty or "counter" not in frame.columns:
        return []
    labels = frame.groupby("counter")["counter_label"].first()
    counts = frame.groupby("counter").size()
    overall = {}
    if len(frame) >= 2 and questionnaire.criteria:
        try:
            table = compute_indices(frame, _elements(questionnaire), by=["counter"],
                                    min_n=min_n)
            rows = table[(table["by"] == "counter") & (table["level"] == "overall")]
            overall = {row["counter"]: row for _i, row in rows.iterrows()}
        except AnalysisInputError:
            overall = {}
    lines = []
    for counter, n in counts.items():
        row = overall.get(counter)
        lines.append({
            "counter": counter, "label": labels[counter], "n": int(n),
            "estimate": None if row is None else _number(row["estimate"]),
            "ci_low": None if row is None else _number(row["ci_low"]),
            "ci_high": None if row is None else _number(row["ci_high"]),
            "ci_method": None if row is None else row["ci_method"],
            "note": None if row is None else row["note"],
            "small": row is None or row["flag"] == "small_n",
        })
    lines.sort(key=lambda line: (line["estimate"] is None, -(line["estimate"] or 0)))
    return lines


def ranking_by_level(ranking: list[dict], levels: dict[str, str]) -> list[dict]:
    """The ranking split by agency level (in the order of AGENCY_LEVELS), each line keeping
    its test against the whole scope; levels without agencies are left out."""
    groups = []
    for level in AGENCY_LEVELS:
        lines = [line for line in ranking if levels.get(line["agency"]) == level]
        if lines:
            groups.append({"level": level, "label": LEVEL_LABELS[level], "lines": lines})
    return groups

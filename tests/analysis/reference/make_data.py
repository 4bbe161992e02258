"""Generate the synthetic survey data the analysis reference tests ship (fixed seed).

Run from the repository root: ``python tests/analysis/reference/make_data.py``.
It rewrites the files under ``tests/analysis/data/``; ``make_reference.R`` then computes the
expected values from them with R's survey package.

The data are built to reach the corners of the estimators: agencies from 1 to hundreds of
respondents, item nonresponse, respondents who answered no criterion, an agency where one
criterion is all blank, an agency where every answer is 5, single-respondent post-strata,
blank grouping values, and a margin given as shares.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SEED = 20240601
DATA = Path(__file__).resolve().parent.parent / "data"

# (agency, respondents): from 1 to hundreds, names with Vietnamese diacritics (NFC).
AGENCIES = [
    ("Sở Tư pháp", 400),
    ("Sở Kế hoạch và Đầu tư", 230),
    ("UBND huyện Đông Hòa", 110),
    ("UBND xã Hòa Bình", 60),
    ("Sở Tài nguyên và Môi trường", 35),
    ("Công an tỉnh", 20),  # every answer is 5
    ("UBND phường Phú Lâm", 12),  # criterion b2 all blank
    ("Sở Xây dựng", 9),
    ("UBND xã Ea Ly", 2),
    ("UBND xã Sông Hinh", 1),
]
FIELDS = ["Tư pháp – hộ tịch", "Đất đai", "Đăng ký kinh doanh"]
GENDERS = ["Nam", "Nữ"]
AGE_BANDS = ["18–29", "30–44", "45–59", "60+"]
PERIODS = ["2024-Q1", "2024-Q2"]
CRITERIA = ["a1", "a2", "a3", "b1", "b2", "c1", "c2"]
ELEMENTS = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "c1": "C", "c2": "C"}
ALL_FIVES = "Công an tỉnh"
B2_BLANK = "UBND phường Phú Lâm"


def main() -> None:
    rng = np.random.default_rng(SEED)
    rows = []
    rid = 0
    for index, (agency, size) in enumerate(AGENCIES):
        field_p = rng.dirichlet(np.ones(len(FIELDS)) * 1.5)
        female_p = 0.35 + 0.3 * rng.random()
        level = 0.6 * rng.normal(size=len(CRITERIA)) + 0.3 * (index % 3)
        for _ in range(size):
            rid += 1
            field = FIELDS[rng.choice(len(FIELDS), p=field_p)]
            gender = GENDERS[int(rng.random() < female_p)]
            age = AGE_BANDS[rng.integers(len(AGE_BANDS))] if rng.random() > 0.04 else ""
            period = PERIODS[rng.integers(2)]
            person = rng.normal()
            answers = []
            for c, crit in enumerate(CRITERIA):
                if agency == ALL_FIVES:
                    answers.append("5")
                    continue
                if agency == B2_BLANK and crit == "b2":
                    answers.append("")
                    continue
                if rng.random() < 0.09:
                    answers.append("")
                    continue
                latent = 3.4 + level[c] + 0.8 * person + rng.normal(scale=0.9)
                answers.append(str(int(np.clip(np.rint(latent), 1, 5))))
            if rng.random() < 0.01:
                answers = [""] * len(CRITERIA)
            rows.append([f"R{rid:04d}", agency, field, gender, age, period, *answers])

    DATA.mkdir(parents=True, exist_ok=True)
    header = ["response_id", "agency", "field", "gender", "age_band", "period", *CRITERIA]
    write(DATA / "responses.csv", header, rows, bom=True)
    write(DATA / "elements.csv", ["item", "element"], [[c, ELEMENTS[c]] for c in CRITERIA])

    # Served transactions per agency x service field: every sampled cell, plus one
    # population cell with count 0 and no respondents (allowed: it carries no weight).
    sample_cells: dict[tuple[str, str], int] = {}
    for row in rows:
        sample_cells[(row[1], row[2])] = sample_cells.get((row[1], row[2]), 0) + 1
    totals = []
    for agency, _ in AGENCIES:
        for field in FIELDS:
            n_h = sample_cells.get((agency, field), 0)
            if n_h:
                totals.append([agency, field, int(n_h * rng.integers(3, 60))])
    empty = next(f for f in FIELDS if ("UBND xã Sông Hinh", f) not in sample_cells)
    totals.append(["UBND xã Sông Hinh", empty, 0])
    write(DATA / "totals_agency_field.csv", ["agency", "field", "count"], totals)

    by_agency: dict[str, int] = {}
    by_field: dict[str, int] = {}
    for agency, field, count in totals:
        by_agency[agency] = by_agency.get(agency, 0) + count
        by_field[field] = by_field.get(field, 0) + count
    write(DATA / "margin_agency.csv", ["agency", "count"], [[a, c] for a, c in by_agency.items()])
    write(DATA / "margin_field.csv", ["field", "count"], [[f, c] for f, c in by_field.items()])
    write(DATA / "margin_gender.csv", ["gender", "share"], [["Nam", 0.47], ["Nữ", 0.53]])


def write(path: Path, header: list[str], rows: list[list], bom: bool = False) -> None:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        out.writerows(rows)


if __name__ == "__main__":
    main()

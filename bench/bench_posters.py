"""How long one batch PDF of counter posters takes, and how big it is.

Usage (from the repository root):

    .venv/bin/python bench/bench_posters.py                 # 500 counters, A4 and A5
    .venv/bin/python bench/bench_posters.py --counters 2000 --size A4
    .venv/bin/python bench/bench_posters.py --check         # exit 1 when over the budget

The counters live in a throwaway SQLite database (40 agencies with long Vietnamese names
under one province), and the timing covers what `flask posters --all` does: load the
printable counters and their tokens, then lay out, draw and write the PDF. design.md's
budget: 500 counters in one PDF in at most 30 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUDGET_SECONDS = 30.0
AGENCY_NAMES = [
    "Trung tâm Phục vụ hành chính công tỉnh Quảng Trị", "Sở Nông nghiệp và Môi trường",
    "UBND phường Đồng Hới", "Sở Văn hóa, Thể thao và Du lịch", "Bảo hiểm xã hội tỉnh",
    "UBND xã Hướng Phùng", "Công an tỉnh – Phòng Cảnh sát quản lý hành chính về trật tự xã hội",
    "Chi cục Thuế khu vực Đông Hà – Cam Lộ",
]
COUNTER_LABELS = ["Tiếp nhận hồ sơ đất đai", "Hộ tịch, chứng thực", "Trả kết quả",
                  "Đăng ký kinh doanh", "Cấp giấy phép xây dựng", "Bảo hiểm y tế"]


def seed(url: str, counters: int) -> None:
    from survey.db import Database, upgrade
    from survey.models import Agency, Counter

    upgrade(url)
    db = Database(url)
    with db.sessionmaker() as session:
        # Under a province, as in a real tree: every poster looks up its header line.
        province = Agency(code="QT", name="UBND tỉnh Quảng Trị", level="province")
        agencies = [Agency(code=f"DV{n:02d}", name=f"{AGENCY_NAMES[n % len(AGENCY_NAMES)]} {n}",
                           parent=province)
                    for n in range(40)]
        session.add_all([province, *agencies])
        for n in range(counters):
            counter = Counter(agency=agencies[n % len(agencies)],
                              label=f"Quầy {n + 1} – {COUNTER_LABELS[n % len(COUNTER_LABELS)]}",
                              questionnaire_id="sipas-service")
            counter.issue_token()
            session.add(counter)
        session.commit()
    db.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=500)
    parser.add_argument("--size", choices=["A4", "A5", "both"], default="both")
    parser.add_argument("--public-url", default="https://hailong.quangtri.gov.vn")
    parser.add_argument("--output", type=Path, help="keep the last PDF here")
    parser.add_argument("--check", action="store_true", help="exit 1 when over the budget")
    args = parser.parse_args()

    from survey import create_app
    from survey.db import get_db
    from survey.posters import poster_for, poster_pdf, printable_counters

    sizes = ["A4", "A5"] if args.size == "both" else [args.size]
    over = False
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite"
        seed(url, args.counters)
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "DATABASE_URL": url,
                          "PUBLIC_URL": args.public_url})
        app.instance_path = folder
        print(f"{'size':<5} {'counters':>8} {'seconds':>8} {'MB':>7} {'pages/s':>8}  budget")
        for size in sizes:
            with app.app_context():
                started = time.perf_counter()
                counters = printable_counters(get_db())
                data = poster_pdf((poster_for(c) for c in counters), size)
                seconds = time.perf_counter() - started
            over |= seconds > BUDGET_SECONDS
            verdict = "ok" if seconds <= BUDGET_SECONDS else "OVER"
            print(f"{size:<5} {len(counters):>8} {seconds:>8.2f} {len(data) / 1e6:>7.2f} "
                  f"{len(counters) / seconds:>8.1f}  {verdict} (≤ {BUDGET_SECONDS:.0f} s)")
            if args.output:
                args.output.write_bytes(data)
        app.extensions["survey_db"].engine.dispose()
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())

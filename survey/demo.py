"""The demo province: the agencies of the 2020 Quảng Trị letter, counters, a login, responses."""

from __future__ import annotations

import random
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, insert, select

from analysis.questionnaire import OVERALL_RATING, SERVICE_FIELD

from .db import get_db, upgrade
from .domain.vectors import encoded_columns
from .models import (
    Agency,
    Answer,
    Counter,
    Response,
    ServiceVolume,
    StaffUser,
    answer_rows,
    issue_tokens,
    utcnow,
)
from .questionnaires import registry

PROVINCE = ("QT", "UBND tỉnh Quảng Trị", "province")
# (code, name, level, counters) on the map since 1 July 2025 (two tiers of local government;
# Quảng Bình merged into Quảng Trị): the provincial public administration service centre
# that hosts most counters, the departments and agencies the 2020 letter addressed, the
# wards' and the special zone's one-stop counters in place of the district People's
# Committees it addressed (abolished), and the vertically organised agencies.
AGENCIES = [
    ("TTPVHCC", "Trung tâm Phục vụ hành chính công tỉnh", "province",
     ["Quầy 1 – Tiếp nhận chung", "Quầy 2 – Trả kết quả", "Quầy 3 – Tư pháp"]),
    ("SNV", "Sở Nội vụ", "department", ["Quầy Nội vụ"]),
    ("STP", "Sở Tư pháp", "department", ["Quầy Hộ tịch, quốc tịch", "Quầy Lý lịch tư pháp"]),
    ("STC", "Sở Tài chính", "department", ["Quầy Đăng ký kinh doanh", "Quầy Đầu tư"]),
    ("SCT", "Sở Công Thương", "department", ["Quầy Công Thương"]),
    ("SNNMT", "Sở Nông nghiệp và Môi trường", "department", ["Quầy Đất đai", "Quầy Môi trường"]),
    ("SXD", "Sở Xây dựng", "department", ["Quầy Cấp phép xây dựng", "Quầy Giao thông vận tải"]),
    ("SKHCN", "Sở Khoa học và Công nghệ", "department", ["Quầy Khoa học và Công nghệ"]),
    ("SVHTTDL", "Sở Văn hóa, Thể thao và Du lịch", "department", ["Quầy Văn hóa – Du lịch"]),
    ("SGDDT", "Sở Giáo dục và Đào tạo", "department", ["Quầy Giáo dục"]),
    ("SYT", "Sở Y tế", "department", ["Quầy Y tế", "Quầy Dược"]),
    ("BQLKKT", "Ban Quản lý Khu kinh tế tỉnh", "department", ["Quầy Khu kinh tế"]),
    ("DONGHOI", "UBND phường Đồng Hới", "commune", ["Quầy 1 – Đất đai", "Quầy 2 – Hộ tịch"]),
    ("DONGTHUAN", "UBND phường Đồng Thuận", "commune", ["Quầy Một cửa"]),
    ("DONGSON", "UBND phường Đồng Sơn", "commune", ["Quầy Một cửa"]),
    ("BADON", "UBND phường Ba Đồn", "commune", ["Quầy Một cửa"]),
    ("BACGIANH", "UBND phường Bắc Gianh", "commune", ["Quầy Một cửa"]),
    ("DONGHA", "UBND phường Đông Hà", "commune", ["Quầy 1 – Đất đai", "Quầy 2 – Hộ tịch"]),
    ("NAMDONGHA", "UBND phường Nam Đông Hà", "commune", ["Quầy Một cửa"]),
    ("QUANGTRI", "UBND phường Quảng Trị", "commune", ["Quầy Một cửa"]),
    ("CONCO", "UBND đặc khu Cồn Cỏ", "commune", ["Quầy Một cửa"]),
    ("CAT", "Công an tỉnh", "vertical", ["Quầy Cư trú", "Quầy Căn cước", "Quầy Xuất nhập cảnh"]),
    ("BCHQS", "Bộ Chỉ huy Quân sự tỉnh", "vertical", ["Quầy Một cửa"]),
    ("THUE", "Thuế tỉnh Quảng Trị", "vertical", ["Quầy Thuế"]),
    ("CHQ", "Cục Hải quan tỉnh", "vertical", ["Quầy Hải quan"]),
    ("BHXH", "Bảo hiểm xã hội tỉnh", "vertical", ["Quầy Bảo hiểm xã hội"]),
    ("BUUDIEN", "Bưu điện tỉnh", "vertical", ["Quầy Bưu chính công ích"]),
]
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "quangtri-demo"
# (login, name, role, agency code): one account per role, all with ADMIN_PASSWORD.
DEMO_USERS = [
    (ADMIN_LOGIN, "Quản trị hệ thống", "admin", None),
    ("canbo-stp", "Cán bộ Sở Tư pháp", "agency", "STP"),
    ("phantich", "Cán bộ phân tích Sở Nội vụ", "analyst", None),
]


def seed_agencies(db, questionnaire_id: str) -> list[Counter]:
    province = Agency(code=PROVINCE[0], name=PROVINCE[1], level=PROVINCE[2])
    db.add(province)
    counters = []
    for code, name, level, labels in AGENCIES:
        agency = Agency(code=code, name=name, level=level, parent=province)
        db.add(agency)
        for label in labels:
            counter = Counter(agency=agency, label=label, questionnaire_id=questionnaire_id)
            db.add(counter)
            counters.append(counter)
    issue_tokens(db, counters)
    return counters


def seed_responses(db, counters: list[Counter], count: int, seed: int = 2025) -> int:
    """Synthetic responses with real differences between agencies and some blank items.

    Each agency gets its own quality level and each criterion its own difficulty, so the
    indices differ by agency and element the way survey results do; about 5% of items are
    left blank, 30% of respondents gave feedback (element E), and answers spread over the
    last six months.
    """
    rng = random.Random(seed)
    reg = registry()
    agency_quality = {}
    now = utcnow()
    rows, given_answers = [], []
    for _ in range(count):
        counter = rng.choice(counters)
        questionnaire = reg.latest(counter.questionnaire_id)
        quality = agency_quality.setdefault(counter.agency_id, rng.gauss(0.0, 0.25))
        seconds = max(25, int(rng.lognormvariate(4.4, 0.4)))
        rows.append({
            "counter_id": counter.id,
            "agency_id": counter.agency_id,
            "questionnaire_id": questionnaire.id,
            "questionnaire_version": questionnaire.version,
            "submitted_at": now - timedelta(days=rng.uniform(0, 182)),
            "locale": "vi" if rng.random() < 0.97 else "en",
            "seconds_taken": seconds,
            "flags": "",
        })
        given: dict = {}
        for question in questionnaire.questions.values():
            if not questionnaire.is_shown(question.id, given):
                continue
            value = _synthetic_answer(rng, question, quality, given)
            if value is None:
                continue
            given[question.id] = value
        given_answers.append(given)
        # The vector the reports read (survey/domain/vectors.py), stored with the row.
        rows[-1].update(encoded_columns(questionnaire, given))
    if rows:
        # The database numbers the responses: explicit ids would leave PostgreSQL's sequence
        # behind, and the next real submissions would clash with them.
        ids = db.scalars(insert(Response).returning(Response.id, sort_by_parameter_order=True),
                         rows).all()
        answers = [row for rid, given in zip(ids, given_answers, strict=True)
                   for row in answer_rows(rid, given)]
        db.execute(insert(Answer), answers)
    return len(rows)


COMMENTS = [
    "Cán bộ hướng dẫn rất nhiệt tình.",
    "Thời gian chờ hơi lâu, mong bố trí thêm ghế ngồi.",
    "Nên có thêm máy lấy số thứ tự.",
    "Thủ tục nhanh gọn, tôi rất hài lòng.",
]


def _synthetic_answer(rng, question, quality, given):
    if question.type == "likert5":
        if not question.required and rng.random() < 0.2 or rng.random() < 0.05:
            return None
        if question.not_applicable and rng.random() < 0.03:
            return 0
        difficulty = (sum(map(ord, question.id)) % 7 - 3) * 0.12
        latent = 4.1 + quality - difficulty + rng.gauss(0, 0.9)
        return min(5, max(1, round(latent)))
    if question.type == "yesno":
        return 1 if rng.random() < 0.3 else 2
    if question.type == "text":
        return rng.choice(COMMENTS) if rng.random() < 0.08 else None
    codes = [o.code for o in question.options]
    if question.type == "multiple":
        return sorted(rng.sample(codes, k=min(len(codes), rng.randint(1, 2))))
    if not question.required and rng.random() < 0.1:
        return None
    if question.role == OVERALL_RATING:
        weights = [max(0.05, 0.6 + quality / 4), 0.3, max(0.02, 0.1 - quality / 20)]
        return rng.choices(codes, weights=weights)[0]
    return rng.choice(codes)


def seed_volumes(db, counters, period=None) -> None:
    """Served transactions per agency × service field: the post-stratification totals."""
    rng = random.Random(7)
    # Monthly rows, as the one-stop system reports them: every month, quarter and the year
    # of the demo's responses then has exact volumes (sums of its months).
    # This year and last (the synthetic responses go back half a year).
    year = utcnow().year
    periods = [period] if period else [f"{y}-{m:02d}" for y in (year - 1, year)
                                       for m in range(1, 13)]
    questionnaire = registry().latest(current_app.config["DEFAULT_QUESTIONNAIRE"])
    field_question = questionnaire.roles.get(SERVICE_FIELD)
    if field_question is None:
        return
    fields = [o.code for o in field_question.options]
    for agency_id in sorted({c.agency_id for c in counters}):
        for code in fields:
            size = rng.randint(20, 4000)
            for month in periods:
                db.add(ServiceVolume(agency_id=agency_id, service_field=str(code),
                                     period=month, transactions=max(1, size // 12)))


@click.command("demo")
@click.option("--responses", default=0, show_default=True,
              help="Also add this many synthetic responses (for the reports) when the demo "
                   "province is created.")
@click.option("--reset", is_flag=True, help="Drop every table first (demo databases only).")
@with_appcontext
def demo_command(responses, reset):
    """Create the demo province: agencies, counters, an admin login; print the counter URLs."""
    db_url = current_app.extensions["survey_db"].url
    if reset:
        from .models import Base

        Base.metadata.drop_all(current_app.extensions["survey_db"].engine)
        with current_app.extensions["survey_db"].engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(db_url)
    db = get_db()
    if db.scalar(select(func.count()).select_from(Agency)):
        counters = list(db.scalars(select(Counter).order_by(Counter.id)))
        click.echo("The demo province is already there (use --reset to start again).")
        # Restarting the demo must not pile up another batch of synthetic answers.
        responses = 0
    else:
        # Staff accounts but no agencies: most likely a real installation's database after
        # `create-user admin`, not a demo one. Seeding there would add the demo province
        # and fail on the existing login (or hand it the demo's public password).
        taken = db.scalars(select(StaffUser.login).where(
            StaffUser.login.in_([login for login, *_rest in DEMO_USERS]))).all()
        if taken:
            raise click.ClickException(
                f"this database already has the staff account(s) {', '.join(sorted(taken))}; "
                "the demo province goes into an empty database (a new SURVEY_DATABASE_URL, "
                "or --reset on a demo database)")
        counters = seed_agencies(db, current_app.config["DEFAULT_QUESTIONNAIRE"])
        db.flush()
        agency_ids = dict(db.execute(select(Agency.code, Agency.id)).all())
        for login, name, role, code in DEMO_USERS:
            user = StaffUser(login=login, name=name, role=role,
                             agency_id=agency_ids[code] if code else None)
            user.set_password(ADMIN_PASSWORD)
            db.add(user)
        db.flush()
        seed_volumes(db, counters)
        db.commit()
        click.echo(f"Created {len(AGENCIES) + 1} agencies and {len(counters)} counters.")
    if responses:
        added = seed_responses(db, counters, responses)
        db.commit()
        click.echo(f"Added {added} synthetic responses.")
    base = current_app.config["PUBLIC_URL"]
    click.echo(f"\nStaff login: {base}/admin  ({ADMIN_LOGIN} / {ADMIN_PASSWORD})")
    for login, _name, role, code in DEMO_USERS[1:]:
        click.echo(f"  also {login} / {ADMIN_PASSWORD}: role {role}"
                   + (f", agency {code} and below" if code else ", every agency"))
    click.echo("Counter URLs (scan or open on a phone):")
    for counter in counters:
        if counter.token:
            click.echo(f"  {base}/r/{counter.token}  {counter.agency.name} – {counter.label}")


def init_app(app) -> None:
    app.cli.add_command(demo_command)

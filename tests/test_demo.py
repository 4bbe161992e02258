"""`flask demo`: the demo province, its logins, counter URLs and synthetic responses."""

from sqlalchemy import func, select

from survey.demo import ADMIN_LOGIN, ADMIN_PASSWORD, AGENCIES
from survey.models import Agency, Answer, Counter, Response, ServiceVolume

from .staff import login
from .test_respond import complete_answers


def count(session, model):
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_demo_seeds_the_province_and_prints_every_counter_url(runner, session, client):
    result = runner.invoke(args=["demo", "--responses", "60"])
    assert result.exit_code == 0, result.output
    counters = session.scalars(select(Counter)).all()
    assert count(session, Agency) == len(AGENCIES) + 1
    assert len(counters) == sum(len(labels) for *_rest, labels in AGENCIES)
    for counter in counters:
        assert f"https://hailong.example.vn/r/{counter.token}" in result.output
    assert count(session, ServiceVolume) > 0
    # Synthetic answers: varied, with some criteria left blank.
    assert count(session, Response) == 60
    criteria = ("a1", "a2", "a3", "b1", "b2", "b3", "b4", "c1", "c2", "c3", "d1", "d2", "d3")
    answered = dict(session.execute(
        select(Answer.question_id, func.count()).where(Answer.question_id.in_(criteria))
        .group_by(Answer.question_id)).all())
    # Every criterion answered by many (D's only by those who got their result, about
    # half), and some left blank (about 5% of the answers).
    assert all(answered.get(qid, 0) > 15 for qid in criteria)
    assert sum(answered.values()) < 60 * len(criteria)
    values = set(session.scalars(select(Answer.value).where(Answer.question_id == "c1")))
    assert len(values) >= 3
    login(client, ADMIN_LOGIN, ADMIN_PASSWORD)
    assert client.get(f"/r/{counters[0].token}").status_code == 200


def test_running_the_demo_again_adds_nothing(runner, session):
    assert runner.invoke(args=["demo", "--responses", "20"]).exit_code == 0
    again = runner.invoke(args=["demo", "--responses", "20"])
    assert again.exit_code == 0 and "already there" in again.output
    assert count(session, Response) == 20
    assert count(session, Agency) == len(AGENCIES) + 1


def test_real_submissions_after_seeding_are_stored(runner, session, client, open_form):
    # On PostgreSQL, synthetic responses inserted with explicit ids left the id sequence
    # behind: the next real submissions clashed with them and were lost.
    assert runner.invoke(args=["demo", "--responses", "30"]).exit_code == 0
    token = session.scalars(select(Counter).order_by(Counter.id)).first().token
    for _ in range(3):
        hidden = open_form(token)
        response = client.post(f"/r/{token}", data={**hidden, **complete_answers()})
        assert response.status_code == 303
    assert count(session, Response) == 33


def test_demo_on_a_database_with_a_real_admin_stops_with_one_line(runner, session, client):
    # deploy.md step 5 created `admin`; `flask demo` on that database used to end in an
    # IntegrityError traceback (or could have handed the account the demo's password).
    created = runner.invoke(args=["create-user", "admin", "--role", "admin",
                                  "--password", "mật-khẩu-thật-2026"])
    assert created.exit_code == 0, created.output
    result = runner.invoke(args=["demo", "--responses", "20"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: this database already has the staff account(s) admin; the demo province goes "
        "into an empty database (a new SURVEY_DATABASE_URL, or --reset on a demo database)"]
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert count(session, Agency) == 0 and count(session, Response) == 0
    # The real account keeps its own password.
    login(client, ADMIN_LOGIN, ADMIN_PASSWORD, expect=422)
    login(client, ADMIN_LOGIN, "mật-khẩu-thật-2026")

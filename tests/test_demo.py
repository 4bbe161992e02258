"""`flask demo`: the demo province, its logins, counter URLs and synthetic responses."""

from sqlalchemy import func, select

from survey.demo import ADMIN_LOGIN, ADMIN_PASSWORD, AGENCIES
from survey.models import Agency, Answer, Counter, Response, ServiceVolume

from .staff import login


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
    answered = session.scalar(select(func.count()).select_from(Answer)
                              .where(Answer.question_id == "a1"))
    assert 0 < answered < 60
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

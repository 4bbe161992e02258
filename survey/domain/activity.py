"""What counters received: responses today, this week, month, quarter, year; the last one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from ..config import LOCAL_TIME
from ..models import Counter, Response, ServiceVolume, utcnow

# A counter that used to receive responses and has had none for this many days is shown
# with a warning: the poster may be torn, covered or its code revoked.
QUIET_DAYS = 7
WINDOWS = ("today", "week", "month", "quarter", "year")


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def window_starts(now: datetime | None = None) -> dict[str, datetime]:
    """The start (in UTC) of today, this week (Monday), month, quarter and year, in local
    time (config.LOCAL_TIME)."""
    local = (now or utcnow()).astimezone(LOCAL_TIME)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    starts = {
        "today": day,
        "week": day - timedelta(days=day.weekday()),
        "month": day.replace(day=1),
        "quarter": day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1),
        "year": day.replace(month=1, day=1),
    }
    return {name: start.astimezone(UTC) for name, start in starts.items()}


def period_labels(now: datetime | None = None) -> dict[str, str]:
    """The ServiceVolume period labels of this month, quarter and year ('2026-12',
    '2026-Q4', '2026'), as survey/reports_data.py names periods."""
    local = (now or utcnow()).astimezone(LOCAL_TIME)
    return {"month": local.strftime("%Y-%m"),
            "quarter": f"{local.year}-Q{(local.month - 1) // 3 + 1}",
            "year": str(local.year)}


def quiet_days(last: datetime | None, now: datetime | None = None) -> int | None:
    """Whole days since `last`, when that is QUIET_DAYS or more; else None."""
    if last is None:
        return None
    days = ((now or utcnow()) - last).days
    return days if days >= QUIET_DAYS else None


def months_in(label: str, now: datetime | None = None) -> list[str]:
    """The month labels of a quarter or year label ('2026-Q4' -> 2026-10..12), up to the
    current month; [] for a month label or another shape."""
    match = re.fullmatch(r"(\d{4})(?:-Q([1-4]))?", label or "")
    if match is None:
        return []
    year = int(match[1])
    first, count = (3 * (int(match[2]) - 1) + 1, 3) if match[2] else (1, 12)
    local = (now or utcnow()).astimezone(LOCAL_TIME)
    last = first + count - 1
    if year == local.year:
        last = min(last, local.month)
    elif year > local.year:
        return []
    return [f"{year}-{month:02d}" for month in range(first, last + 1)]


@dataclass
class Activity:
    """Responses received by a counter or an agency in each window, and the last one that
    came through the QR code (``last``; paper sheets keyed in by staff do not show that a
    poster still works)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WINDOWS, 0))
    total: int = 0
    paper: int = 0
    last: datetime | None = None

    def add(self, other: Activity) -> None:
        for name in WINDOWS:
            self.counts[name] += other.counts[name]
        self.total += other.total
        self.paper += other.paper
        if other.last is not None and (self.last is None or other.last > self.last):
            self.last = other.last

    def quiet_days(self, now: datetime | None = None) -> int | None:
        """Whole days since the last response through the QR code, when that is QUIET_DAYS
        or more; else None."""
        return quiet_days(self.last, now)


def activity(db: Session, agency_id: int | None = None,
             counter_ids: list[int] | None = None,
             now: datetime | None = None) -> tuple[dict[int, Activity], Activity]:
    """Per-counter activity and the agency's own total, in one grouped query.

    Counters are those of `agency_id` today plus any in `counter_ids`. The agency total
    counts the responses stored under `agency_id` (copied at submit time, so a counter moved
    away keeps its history where it was); without `agency_id` it sums the counters.
    """
    starts = window_starts(now)
    conditions = []
    if agency_id is not None:
        conditions += [Response.agency_id == agency_id,
                       Response.counter_id.in_(select(Counter.id)
                                               .where(Counter.agency_id == agency_id))]
    if counter_ids:
        conditions.append(Response.counter_id.in_(list(counter_ids)))
    if not conditions:
        return {}, Activity()
    in_window = [func.sum(case((Response.submitted_at >= starts[name], 1), else_=0))
                 for name in WINDOWS]
    query = (select(Response.counter_id, Response.agency_id, *in_window, func.count(),
                    func.sum(case((Response.channel == "paper", 1), else_=0)),
                    func.max(case((Response.channel != "paper", Response.submitted_at))))
             .where(or_(*conditions))
             .group_by(Response.counter_id, Response.agency_id))
    per_counter: dict[int, Activity] = {}
    total = Activity()
    for counter_id, row_agency, *numbers in db.execute(query):
        *window_counts, count, paper, last = numbers
        part = Activity(dict(zip(WINDOWS, map(int, window_counts), strict=True)),
                        int(count), int(paper or 0), as_utc(last))
        per_counter.setdefault(counter_id, Activity()).add(part)
        if agency_id is None or row_agency == agency_id:
            total.add(part)
    return per_counter, total


def last_scanned(db: Session, counter_ids: list[int]) -> dict[int, datetime]:
    """The time of each counter's last response through its QR code (paper sheets left
    out), for the counters that have one.

    The last one received: for each counter, its newest non-paper response on the
    (counter_id, id) index, read from the end instead of a grouped max over every response
    (bench/bench_counters.py: 10,000 counters, 3 million responses on PostgreSQL, 530 ->
    148 ms). Web responses are dated when stored, so the newest is also the latest in time.
    """
    if not counter_ids:
        return {}
    newest = (select(Response.submitted_at)
              .where(Response.counter_id == Counter.id, Response.channel != "paper")
              .order_by(Response.id.desc()).limit(1)
              .correlate(Counter).scalar_subquery())
    rows = db.execute(select(Counter.id, newest).where(Counter.id.in_(list(counter_ids))))
    return {counter_id: as_utc(last) for counter_id, last in rows if last is not None}


def volume_shares(db: Session, agency_id: int, received: Activity,
                  now: datetime | None = None) -> dict[str, tuple[int, float]]:
    """{window: (dossiers served, share answered in %)} for this month, quarter and year.

    The dossiers are the agency's served volume for exactly that period or, for the quarter
    and the year, the sum of its months from the period's first month to this one when
    every one of them was imported (the responses counted run over the same months). A
    window without either has no share.
    """
    labels = period_labels(now)
    months = {name: months_in(label, now) or [label] for name, label in labels.items()}
    wanted = set(labels.values()).union(*months.values())
    volumes = dict(db.execute(
        select(ServiceVolume.period, func.sum(ServiceVolume.transactions))
        .where(ServiceVolume.agency_id == agency_id, ServiceVolume.period.in_(sorted(wanted)))
        .group_by(ServiceVolume.period)).all())
    shares = {}
    for name, label in labels.items():
        if label in volumes:
            served = int(volumes[label] or 0)
        elif all(month in volumes for month in months[name]):
            served = sum(int(volumes[month] or 0) for month in months[name])
        else:
            continue
        if served > 0:
            shares[name] = (served, 100 * received.counts[name] / served)
    return shares

"""Coverage: responses relative to dossiers served, per agency and period and per counter.

Dossiers served come from the service volumes (per agency × service field × period) and,
for a counter that hands out receipt codes, from the codes issued to it (one per dossier
when the one-stop system asks the API for one). More responses than dossiers served is
itself a sign of inflation: `Coverage.over`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..config import LOCAL_TIME
from ..models import Counter, ReceiptCode, Response, ServiceVolume
from .activity import Activity, months_in, volume_shares, window_starts

PERIOD = re.compile(r"(?P<year>\d{4})(?:-Q(?P<quarter>[1-4])|-(?P<month>0[1-9]|1[0-2]))?")


@dataclass(frozen=True)
class Coverage:
    """One agency in one period: responses (all, and those without integrity flags),
    dossiers served, and responses per 100 dossiers."""

    agency_id: int
    period: str
    responses: int
    unflagged: int
    served: int

    @property
    def ratio(self) -> float | None:
        """Responses per 100 dossiers served (%), None when no dossier was recorded."""
        return 100 * self.responses / self.served if self.served > 0 else None

    @property
    def over(self) -> bool:
        """More responses than dossiers served: not every response can be a citizen's."""
        return self.responses > self.served


def period_range(label: str) -> tuple[datetime, datetime] | None:
    """[start, end) in UTC of a volume period label ('2026', '2026-Q3', '2026-07'), taken
    in local time as the reports name periods; None for a label of another shape."""
    match = PERIOD.fullmatch(label or "")
    if match is None:
        return None
    year = int(match["year"])
    if match["quarter"]:
        first, months = 3 * (int(match["quarter"]) - 1) + 1, 3
    elif match["month"]:
        first, months = int(match["month"]), 1
    else:
        first, months = 1, 12
    end_month = first + months
    start = datetime(year, first, 1, tzinfo=LOCAL_TIME)
    end = datetime(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=LOCAL_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


def agency_coverage(db: Session, agency_ids: set[int] | None = None,
                    periods: list[str] | None = None) -> list[Coverage]:
    """Coverage of every agency (in `agency_ids`, None: all) and period (in `periods`,
    None: all) for which a served volume was imported; two grouped queries.

    Responses are counted under the agency they were stored for (copied at submit time),
    every channel (web and paper); `unflagged` leaves out responses with integrity flags.
    """
    query = (select(ServiceVolume.agency_id, ServiceVolume.period,
                    func.sum(ServiceVolume.transactions))
             .group_by(ServiceVolume.agency_id, ServiceVolume.period))
    if agency_ids is not None:
        query = query.where(ServiceVolume.agency_id.in_(list(agency_ids) or [-1]))
    if periods is not None:
        query = query.where(ServiceVolume.period.in_(list(periods) or [""]))
    served = {(agency_id, period): int(total or 0)
              for agency_id, period, total in db.execute(query)}
    ranges = {label: period_range(label) for label in {period for _a, period in served}}
    ranges = {label: span for label, span in ranges.items() if span is not None}
    if not ranges:
        return []
    labels = sorted(ranges)
    columns = []
    for label in labels:
        start, end = ranges[label]
        inside = and_(Response.submitted_at >= start, Response.submitted_at < end)
        columns.append(func.sum(case((inside, 1), else_=0)))
        columns.append(func.sum(case((and_(inside, Response.flags == ""), 1), else_=0)))
    agencies = sorted({agency_id for agency_id, _p in served})
    counts = {}
    for agency_id, *numbers in db.execute(
            select(Response.agency_id, *columns).where(Response.agency_id.in_(agencies))
            .group_by(Response.agency_id)):
        for index, label in enumerate(labels):
            counts[(agency_id, label)] = (int(numbers[2 * index] or 0),
                                          int(numbers[2 * index + 1] or 0))
    return [Coverage(agency_id, period, *counts.get((agency_id, period), (0, 0)), total)
            for (agency_id, period), total in sorted(served.items())
            if period in ranges]


def over_served(db: Session, agency_ids: set[int] | None = None,
                periods: list[str] | None = None) -> list[Coverage]:
    """The agency periods with more responses than dossiers served (a flag in itself)."""
    return [row for row in agency_coverage(db, agency_ids, periods) if row.over]


def counter_shares(db: Session, counter: Counter, received: Activity,
                   now: datetime | None = None) -> dict[str, tuple[int, float]]:
    """{window: (dossiers served, share answered in %)} for a counter, as volume_shares
    gives them for an agency: the receipt codes issued to the counter in the window when
    it hands them out; else its agency's volume when it is the agency's only counter;
    else nothing (the volumes do not say how an agency's dossiers split over counters)."""
    starts = window_starts(now)
    windows = ("month", "quarter", "year")
    issued = db.execute(select(*[
        func.sum(case((ReceiptCode.created_at >= starts[name], 1), else_=0))
        for name in windows]).where(ReceiptCode.counter_id == counter.id)).one()
    shares = {name: (int(count), 100 * received.counts[name] / int(count))
              for name, count in zip(windows, issued, strict=True) if count}
    if shares:
        return shares
    siblings = db.scalar(select(func.count()).select_from(Counter)
                         .where(Counter.agency_id == counter.agency_id))
    if siblings == 1:
        return volume_shares(db, counter.agency_id, received, now)
    return {}


def report_coverage(db: Session, agency_id: int, period: str | None,
                    now: datetime | None = None, latest: int = 12) -> list[Coverage]:
    """What the agency's report page shows: for a period, its own volume or, for a quarter
    or a year, the sum of its months (to this month) when every one was imported; without
    a period, the latest `latest` periods with a volume."""
    if not period:
        return agency_coverage(db, {agency_id})[-latest:]
    rows = agency_coverage(db, {agency_id}, [period])
    if rows:
        return rows
    months = months_in(period, now)
    parts = agency_coverage(db, {agency_id}, months) if months else []
    if not months or len(parts) != len(months):
        return []
    return [Coverage(agency_id, period, sum(p.responses for p in parts),
                     sum(p.unflagged for p in parts), sum(p.served for p in parts))]


def counter_coverage(db: Session, agency_id: int, counter_ids: list[int],
                     period: str | None) -> dict[int, tuple[int, int]]:
    """{counter: (responses, dossiers)} in the period (None: all time) for the counters
    whose dossiers are known: the receipt codes issued to a counter that hands them out
    (one per dossier), against its responses since its first code (earlier ones had no
    code to count them against); else the agency's served volume when it has only one
    counter."""
    span = period_range(period) if period else None
    if period and span is None:
        return {}

    def within(column):
        return and_(column >= span[0], column < span[1]) if span else True

    issued = dict(db.execute(
        select(ReceiptCode.counter_id, func.count())
        .where(ReceiptCode.counter_id.in_(counter_ids or [-1]), within(ReceiptCode.created_at))
        .group_by(ReceiptCode.counter_id)).all())
    if not issued and len(counter_ids) == 1 and db.scalar(
            select(func.count()).select_from(Counter)
            .where(Counter.agency_id == agency_id)) == 1:
        only = report_coverage(db, agency_id, period)
        if period is None or len(only) != 1:
            return {}
        return {counter_ids[0]: (only[0].responses, only[0].served)}
    first_code = (select(func.min(ReceiptCode.created_at))
                  .where(ReceiptCode.counter_id == Response.counter_id).scalar_subquery())
    responses = dict(db.execute(
        select(Response.counter_id, func.count())
        .where(Response.counter_id.in_(list(issued) or [-1]), within(Response.submitted_at),
               Response.submitted_at >= first_code)
        .group_by(Response.counter_id)).all())
    return {counter: (int(responses.get(counter, 0)), int(count))
            for counter, count in issued.items() if count}

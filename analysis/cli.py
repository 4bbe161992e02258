"""Command-line pieces: the options shared by ``python -m analysis`` and
``python -m analysis.quick``, their checks, and the quick form's command.

Kept apart from the library modules so that ``import analysis`` or ``import analysis.quick``
loads no argparse.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .io import (
    FLAGS,
    AnalysisInputError,
    drop_flagged,
    load_questionnaire,
    read_margin,
    read_responses,
    read_totals,
    write_table,
)
from .quick import quick_indices


def add_design_arguments(parser: argparse.ArgumentParser) -> None:
    """The weighting, grouping and flagging options shared by the commands that estimate."""
    parser.add_argument("--weighting", choices=("none", "poststrat", "rake"), default="none")
    parser.add_argument(
        "--totals", metavar="FILE", help="poststrat: post-stratum columns + count (CSV)"
    )
    parser.add_argument(
        "--margin",
        metavar="FILE",
        action="append",
        default=[],
        help="rake: one CSV per margin, variable column + count or share (repeat, in order)",
    )
    parser.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="VARS",
        help="grouping, variables joined by commas, e.g. agency or agency,period (repeat)",
    )
    parser.add_argument("--min-n", type=int, default=30, help="flag groups below this size (30)")
    parser.add_argument(
        "--trim", type=float, metavar="K", help="cap weights at K times the mean weight"
    )
    parser.add_argument(
        "--drop-empty-cells",
        action="store_true",
        help="ignore population cells without respondents instead of stopping",
    )
    parser.add_argument(
        "--include-flagged",
        action="store_true",
        help="keep the responses the web app flagged (a non-blank 'flags' column, as in its "
        "responses download); by default they are left out, as on the report pages",
    )
    add_level_argument(parser)


def read_counted(path: str, criteria, args: argparse.Namespace,
                 columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The responses file, without its flagged rows unless --include-flagged (what was left
    out is said on stderr)."""
    responses = read_responses(path, criteria, columns=columns, optional=[FLAGS])
    if args.include_flagged:
        return responses
    kept, reasons = drop_flagged(responses)
    if reasons:
        tally = ", ".join(f"{code} {n}" for code, n in sorted(reasons.items()))
        print(f"note: {len(responses) - len(kept)} flagged responses left out ({tally}); "
              "--include-flagged keeps them", file=sys.stderr)
    return kept


def add_level_argument(parser: argparse.ArgumentParser) -> None:
    """``--level``: the confidence level of every interval (and margin of error)."""
    parser.add_argument(
        "--level", type=_level, default=0.95, help="confidence level of the intervals (0.95)"
    )


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def read_design_inputs(args: argparse.Namespace) -> tuple[pd.DataFrame | None, list[pd.DataFrame]]:
    """The totals and margins the options of :func:`add_design_arguments` name, checked."""
    if args.weighting == "poststrat" and not args.totals:
        raise AnalysisInputError("--weighting poststrat needs --totals FILE")
    if args.weighting == "rake" and not args.margin:
        raise AnalysisInputError("--weighting rake needs at least one --margin FILE")
    if args.weighting != "poststrat" and args.totals:
        raise AnalysisInputError("--totals is only used with --weighting poststrat")
    if args.weighting != "rake" and args.margin:
        raise AnalysisInputError("--margin is only used with --weighting rake")
    totals = read_totals(args.totals) if args.totals else None
    return totals, [read_margin(m) for m in args.margin]


def quick_main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis.quick``: the quick form's three tables; 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.quick",
        description="Counter quick form: share satisfied (weighted, logit interval; "
        "unweighted, Wilson; 95%% unless --level), reasons tallied, quick criteria indices.",
    )
    parser.add_argument("responses", help="responses CSV (e.g. the paper form's template)")
    parser.add_argument(
        "--questionnaire",
        required=True,
        metavar="FILE",
        help="the quick form's YAML file (kind counter-quick: its rating, reasons, criteria)",
    )
    add_design_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="OUT.csv/.xlsx/.json: writes OUT-satisfaction, OUT-reasons and "
        "OUT-criteria (default: the three tables as CSV on stdout)",
    )
    args = parser.parse_args(argv)
    try:
        questionnaire = load_questionnaire(args.questionnaire)
        totals, margins = read_design_inputs(args)
        criteria = [q.id for q in questionnaire.criteria]
        result = quick_indices(
            read_counted(args.responses, criteria, args),
            questionnaire,
            weighting=args.weighting,
            totals=totals,
            margins=margins or None,
            by=args.by,
            min_n=args.min_n,
            trim=args.trim,
            drop_empty_cells=args.drop_empty_cells,
            level=args.level,
        )
        for name in ("satisfaction", "reasons", "criteria"):
            table = getattr(result, name)
            if args.output and args.output != "-":
                out = Path(args.output)
                write_table(table, out.with_name(f"{out.stem}-{name}{out.suffix or '.csv'}"))
            else:
                print(f"# {name}")
                write_table(table, None)
    except AnalysisInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

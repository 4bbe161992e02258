"""Command line: ``python -m analysis indices ...`` and ``python -m analysis sample-size ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .cli import add_design_arguments, add_level_argument, read_counted, read_design_inputs
from .design import DEFAULT_MIN_CELL_N
from .indices import compare_periods, compute_indices, parse_by
from .io import (
    AnalysisInputError,
    read_elements,
    read_questionnaire,
    read_totals,
    write_table,
)
from .sample_size import sample_size

EPILOG = """examples:
  python -m analysis indices responses.csv --questionnaire questionnaires/sipas-service-v1.yaml \\
      --weighting poststrat --totals volumes.csv --by agency --by agency,period -o indices.xlsx
  python -m analysis indices paper.csv --elements items.csv --weighting rake \\
      --margin agency.csv --margin gender_share.csv -o indices.csv
  python -m analysis sample-size --volumes volumes.csv --by agency --margin-of-error 0.05
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Satisfaction indices (SIPAS) with weighting and 95% confidence intervals.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ind = commands.add_parser(
        "indices",
        help="criterion, element and overall indices per group",
        description="Criterion, element and overall (SIPAS) indices with 95% intervals; "
        "always the whole file (by=ALL), plus one grouping per --by.",
    )
    ind.add_argument("responses", help="wide responses CSV (UTF-8, BOM optional)")
    source = ind.add_mutually_exclusive_group(required=True)
    source.add_argument("--questionnaire", metavar="FILE", help="questionnaire YAML file")
    source.add_argument("--elements", metavar="MAP.csv", help="CSV with columns item,element")
    add_design_arguments(ind)
    ind.add_argument(
        "--min-cell-n",
        type=int,
        metavar="N",
        default=DEFAULT_MIN_CELL_N,
        help="poststrat: pool, within each agency, post-strata with fewer than N respondents "
        f"and empty ones (default {DEFAULT_MIN_CELL_N}; 1 = no pooling, as R's postStratify)",
    )
    ind.add_argument(
        "--compare-periods",
        metavar="VAR",
        help="instead of the indices: each group of every --by against its previous value "
        "of VAR (e.g. period), with the test of the difference",
    )
    ind.add_argument(
        "-o", "--output", metavar="OUT", help=".csv, .xlsx or .json (default: CSV to stdout)"
    )
    ind.add_argument(
        "--notes",
        metavar="FILE",
        help="write the weighting notes (what was pooled, dropped or not represented) to "
        "FILE (.csv, .xlsx or .json). Default: a sheet 'notes' in an .xlsx output; "
        "OUT-notes.csv (or .json) next to a CSV or JSON output; on stderr, as CSV, when the "
        "table goes to stdout and there is something to note",
    )

    ss = commands.add_parser(
        "sample-size",
        help="respondents needed per agency for a margin of error",
        description="Respondents needed for a margin of error e (at 95% unless --level), by "
        "the finite-population formula and by the rule n = N/(1+N e^2).",
    )
    volumes = ss.add_mutually_exclusive_group(required=True)
    volumes.add_argument(
        "--volume", type=float, action="append", metavar="N", help="served volume (repeat)"
    )
    volumes.add_argument("--volumes", metavar="FILE", help="CSV with unit column(s) + count")
    ss.add_argument(
        "--by", metavar="VARS", help="sum the volumes per these columns (comma-separated)"
    )
    ss.add_argument(
        "--margin-of-error", "-e", default="0.05", help="e.g. 0.05 or 5%% (default 0.05)"
    )
    ss.add_argument("--proportion", type=float, default=0.5, help="expected proportion (0.5)")
    ss.add_argument(
        "--design-effect", type=float, default=1.0, help="expected design effect (1.0)"
    )
    ss.add_argument(
        "--response-rate", type=float, default=1.0, help="expected response rate (1.0)"
    )
    add_level_argument(ss)
    ss.add_argument("-o", "--output", metavar="OUT", help=".csv, .xlsx or .json (default: stdout)")
    return parser


def _fraction(text: str) -> float:
    text = text.strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def run_indices(args: argparse.Namespace) -> pd.DataFrame:
    """The ``indices`` command: read the files, call :func:`compute_indices`."""
    emap = (
        read_questionnaire(args.questionnaire)
        if args.questionnaire
        else read_elements(args.elements)
    )
    totals, margins = read_design_inputs(args)
    groupings = parse_by(args.by)
    # Only the columns the run uses are read: a large file reads faster and smaller.
    needed = [v for grouping in groupings for v in grouping]
    for table in ([totals] if totals is not None else []) + margins:
        needed += [c for c in table.columns if c not in ("count", "share")]
    if args.compare_periods:
        needed.append(args.compare_periods)
    responses = read_counted(args.responses, emap.criteria, args,
                             columns=list(dict.fromkeys(needed)))
    options = {
        "weighting": args.weighting,
        "totals": totals,
        "margins": margins or None,
        "by": groupings,
        "min_n": args.min_n,
        "trim": args.trim,
        "drop_empty_cells": args.drop_empty_cells,
        "min_cell_n": args.min_cell_n,
        "level": args.level,
    }
    if args.compare_periods:
        return compare_periods(responses, emap, period=args.compare_periods, **options)
    return compute_indices(responses, emap, **options)


def run_sample_size(args: argparse.Namespace) -> pd.DataFrame:
    """The ``sample-size`` command."""
    try:
        e = _fraction(args.margin_of_error)
    except ValueError:
        raise AnalysisInputError(
            f"--margin-of-error: not a number: {args.margin_of_error}"
        ) from None
    if args.volumes:
        volume = read_totals(args.volumes)
    else:
        volume = args.volume
    by = [b.strip() for b in args.by.split(",")] if args.by else None
    return sample_size(
        volume,
        margin_of_error=e,
        proportion=args.proportion,
        by=by,
        design_effect=args.design_effect,
        response_rate=args.response_rate,
        level=args.level,
    )


def write_notes(table: pd.DataFrame, output: str | None, notes: str | None) -> None:
    """The weighting notes of ``table``: to ``notes``, else next to ``output`` (see --notes)."""
    frame = table.attrs.get("notes")
    if not isinstance(frame, pd.DataFrame):
        return
    if notes:
        write_table(frame, notes)
        return
    if not output or output == "-":
        if not frame.empty:
            print("# weighting notes", file=sys.stderr)
            write_table(frame, sys.stderr)
        return
    out = Path(output)
    suffix = out.suffix.lower()
    if suffix == ".xlsx":
        return  # the notes sheet of the workbook
    write_table(frame, out.with_name(f"{out.stem}-notes{suffix if suffix == '.json' else '.csv'}"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for input errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "indices":
            table = run_indices(args)
            write_table(table, args.output)
            write_notes(table, args.output, args.notes)
        else:
            write_table(run_sample_size(args), args.output)
    except AnalysisInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

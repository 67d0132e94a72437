"""``export``: the audit PDF of one stored case, or of the cases matching ``history``-style
filters, from the terminal."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.common import (
    STORE_FAILED,
    TerminalProgress,
    add_db_option,
    add_filter_options,
    case_filters,
    data_path,
    open_cli_store,
)
from models.errors import CasewiseError

DEFAULT_LIMIT = 500


def describe(filters: dict, limit: int) -> str:
    """The selection in words, for the batch's summary page."""
    words = {"search": "text matches '{}'", "label": "model label {}",
             "decision": "review decision {}", "reviewer": "signed by {}", "model_id": "model {}",
             "date_from": "created from {}", "date_to": "created up to {}"}
    parts = [words[k].format(v) for k, v in filters.items() if k in words and v]
    if filters["escalated"]:
        parts.append("escalated")
    if filters["reviewed"] is not None:
        parts.append("reviewed" if filters["reviewed"] else "not reviewed (or deferred)")
    return ", ".join(parts or ["all cases"]) + f"; at most {limit}, oldest first"


def matching_ids(store, filters: dict, limit: int) -> tuple[list[int], int]:
    """Ids of up to ``limit`` matching cases, oldest first, and how many match in all."""
    from app.store.queries import MAX_PAGE_SIZE

    ids: list[int] = []
    page, total = 1, 0
    while len(ids) < limit:
        found = store.find_cases(**filters, sort="id", page=page,
                                 page_size=min(MAX_PAGE_SIZE, limit - len(ids)))
        total = found.total
        ids += [item.id for item in found.items]
        if not found.items or len(ids) >= total:
            break
        page += 1
    return ids[:limit], total


def _case_ids(args: argparse.Namespace, store) -> tuple[list[int], str | None]:
    filters = case_filters(args)
    if args.case:
        if any(v is not None for v in filters.values()):
            raise CasewiseError("The filters choose cases for --query; with --case they would "
                                "be ignored. Drop them, or use --query instead of --case.")
        return args.case, None
    ids, total = matching_ids(store, filters, args.limit)
    if not ids:
        raise CasewiseError("No stored case matches these filters, so nothing was exported. "
                            "Check them with `python main.py history`.")
    if total > len(ids):
        print(f"exporting the first {len(ids)} of {total} matching cases; raise --limit for "
              "more", file=sys.stderr)
    return ids, describe(filters, args.limit)


def cmd_export(args: argparse.Namespace) -> int:
    from app.reports import export_cases, model_card_loader

    if args.limit < 1:
        raise CasewiseError("--limit must be at least 1.")
    store = open_cli_store(args, read_only_ok=True)
    reporter = TerminalProgress()
    try:
        ids, selection = _case_ids(args, store)
        result = export_cases(store, ids, args.out,
                              model_card_for=model_card_loader(data_path(args)),
                              progress=reporter if len(ids) > 1 else None,
                              selection=selection)
    finally:
        reporter.close()
        store.close()
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"wrote {result.path}: {result.cases} case(s), {result.pages} page(s), "
              f"sha256 {result.sha256} ({result.seconds:.1f} s)")
    if store.read_only:
        print("warning: the case history is read-only, so this export is NOT logged in its "
              "audit trail; make the history writable and export again to log it.",
              file=sys.stderr)
        return STORE_FAILED
    return 0


def add_export_parser(commands) -> None:
    export = commands.add_parser(
        "export", help="write the audit PDF of a case, or of the cases matching filters")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", type=int, action="append", metavar="ID",
                       help="the case to export (repeat for several)")
    which.add_argument("--query", action="store_true",
                       help="export the cases matching the filters below, with a summary page")
    export.add_argument("--out", required=True, metavar="FILE.pdf", help="the PDF to write")
    add_filter_options(export)
    export.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"at most this many cases (default {DEFAULT_LIMIT})")
    add_db_option(export)
    export.add_argument("--json", action="store_true",
                        help="print {path, sha256, cases, pages} as JSON")
    export.set_defaults(handler=cmd_export)

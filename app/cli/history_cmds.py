"""The case history from the terminal: ``score``, ``history``, ``review``, ``audit verify``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from app.accounts.manifestation import signature_line
from app.accounts.names import escaped
from app.cli.auth import acting_login, add_auth_options, read_password
from app.cli.common import (
    PARTLY_FAILED,
    STORE_FAILED,
    TerminalProgress,
    add_db_option,
    add_filter_options,
    add_llm_server_options,
    case_filters,
    llm_choice,
    load_cli_workbench,
    open_cli_store,
    settings_flags,
    with_settings,
)
from app.settings import MEANINGS
from models.errors import CasewiseError


def cmd_score(args: argparse.Namespace) -> int:
    """Predict, decide escalation, explain and store every case of a file; a re-run finishes
    what a case lacks and skips whole ones. Exit 4 when any case failed, 3 when the history
    stopped taking them."""
    from app.batch import read_cases
    from app.pipeline import ASK_ESCALATED, ASK_NEVER, BatchCounts, Steps, score_into
    from app.store import StoreError

    args = with_settings(args)  # the LLM the window's batch import would ask, unless told
    keep = None if args.keep_cols is None else [c.strip() for c in args.keep_cols.split(",")
                                                 if c.strip()]
    cases = read_cases(Path(args.file), args.text_col, args.encoding, keep)
    bench = load_cli_workbench(args, args.model)
    llm = llm_choice(args, args.llm_backend, args.llm_model) if args.llm else None
    steps = Steps(explain=not args.no_explain, ask=ASK_ESCALATED if args.llm else ASK_NEVER,
                  audit_share=args.settings.audit_share)
    store = open_cli_store(args)
    reporter = TerminalProgress()
    counts, stopped = BatchCounts(), None
    try:
        score_into(counts, bench, cases, store, steps=steps, llm=llm, progress=reporter)
    except StoreError as exc:
        stopped = exc
    finally:
        reporter.close()
        store.close()
    for source, message in counts.failures:
        print(f"case {source} failed: {message}", file=sys.stderr)
    summary = counts.to_dict()
    print(json.dumps(summary) if args.json else
          ", ".join(f"{k} {v}" for k, v in summary.items()))
    if stopped is not None:
        print(f"error: the case history stopped taking cases: {stopped}\nWhat is stored is "
              "whole; run the same command again to finish the rest.", file=sys.stderr)
        return STORE_FAILED
    return PARTLY_FAILED if counts.failed else 0


def _summary(item) -> dict:
    return {"id": item.id, "created": item.created, "label": item.label,
            "confidence": item.confidence, "decision": item.escalation,
            "model_id": item.model_id, "preview": item.preview,
            "review": asdict(item.review) if item.review else None}


def cmd_history(args: argparse.Namespace) -> int:
    store = open_cli_store(args, read_only_ok=True)
    try:
        page = store.find_cases(**case_filters(args), page_size=args.limit,
                                sort="relevance" if args.search else "-created")
    finally:
        store.close()
    rows = [_summary(item) for item in page.items]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    print(f"{page.total} case(s)" + (f", showing {len(rows)}" if page.total > len(rows) else ""))
    for row in rows:
        review = row["review"]
        reviewed = (f"{review['decision']} by {escaped(review['reviewer'])}" if review
                    else "not reviewed")
        print(f"#{row['id']:<6} {row['created'][:16]}  {row['label'] or '-':<10} "
              f"{row['decision'] or '-':<9} {reviewed:<28} {row['preview'][:60]}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Sign a review: the login id and password of the signer (never an argument)."""
    from app.accounts.service import AccountSession

    args = with_settings(args)  # --meaning not given: the window's meaning
    decision = "accept" if args.accept else "override" if args.override else "defer"
    if decision == "override" and not (args.reason or "").strip():
        # Said before the password is asked for (the store checks it again).
        raise CasewiseError("An override needs a reason: say why the model's label is wrong "
                            "(--reason TEXT).")
    with open_cli_store(args) as store:
        login = acting_login(args)
        signer = AccountSession(store).unlock(read_password(args, f"Password for {login}: "),
                                              login)
        review = store.add_review(args.case_id, signer, decision, label=args.override,
                                  reason=args.reason, meaning=args.meaning)
    print(json.dumps(asdict(review)) if args.json else
          f"review {review.id} of case {review.case_id}: {review.decision}"
          f"{' -> ' + review.label if review.label else ''}\n{signature_line(review)}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from app.store.verify import parse_head

    try:
        against = parse_head(args.against) if args.against else None
    except ValueError as exc:
        raise CasewiseError(str(exc)) from exc
    store = open_cli_store(args, anchor=False, read_only_ok=True)
    reporter = None if args.json else TerminalProgress()
    try:
        result = store.verify_chain(progress=reporter, against=against)
    finally:
        store.close()
        if reporter is not None:
            reporter.close()
    if args.json:  # "first_broken" as before; every finding beside it
        print(json.dumps({"first_broken": result.first_broken_id, **asdict(result)}))
    else:
        print("\n".join(verification_lines(result)))
    return 0 if result.ok else 1


def verification_lines(result) -> list[str]:
    """What ``audit verify`` found, one finding a line; every bad signature by review id."""
    lines = [f"audit chain intact: {result.events} events" if result.first_broken_id is None
             and not result.reason else
             f"audit trail BROKEN: {result.reason}" if result.first_broken_id is None else
             f"audit chain BROKEN at event {result.first_broken_id}: {result.reason}"]
    lines.append(f"signatures: {result.signatures} checked, {len(result.bad_signatures)} bad"
                 + (f"; {result.unsigned_before_accounts} review(s) unsigned (recorded "
                    "before accounts)" if result.unsigned_before_accounts else ""))
    lines += [f"  review {review_id}: {why}" for review_id, why in result.bad_signatures]
    lines += [f"problem: {problem}" for problem in result.problems]
    if result.anchored_to is None:
        lines.append(f"not yet anchored: all {result.unanchored_events} events (no signed "
                     "checkpoint yet)")
    elif result.unanchored_events:
        lines.append(f"anchored by a signed checkpoint up to event {result.anchored_to}; "
                     f"not yet anchored: {result.unanchored_events} later event(s)")
    else:
        lines.append(f"anchored by a signed checkpoint up to event {result.anchored_to} "
                     "(the last)")
    if result.against:
        lines.append(result.against)
    return lines


def cmd_audit_guarantee(args: argparse.Namespace) -> int:
    """Does the certified bound still hold? The AUTO decisions of the active policy that
    reviewers have since signed, through the anytime-valid monitor."""
    from models.guarantee_monitor import watch

    bench = load_cli_workbench(args, None)
    if bench.policy is None:
        raise CasewiseError("The active model has no escalation policy: nothing is certified, "
                            "so there is no bound to watch (`python main.py calibrate`).")
    policy = bench.policy
    store = open_cli_store(args, anchor=False, read_only_ok=True)
    try:
        audited = store.audited_decisions(policy.policy_id)
    finally:
        store.close()
    result = watch([d.wrong for d in audited], policy.settings.alpha, policy.settings.delta)
    if args.json:
        print(json.dumps({"policy_id": policy.policy_id, "model_id": bench.model_id,
                          **asdict(result), "alarm": result.alarm,
                          "wrong_case_ids": [d.case_id for d in audited if d.wrong]}))
    else:
        print(f"policy {policy.policy_id} of model {bench.model_id}: {result.summary()}")
    return 1 if result.alarm else 0  # as `audit verify`: 1 when what it checks does not hold


def cmd_audit_weekly(args: argparse.Namespace) -> int:
    """Per week and model: decided, escalated, unusual texts, reviews and overrides, and for
    the model at work the audited automatic decisions and the guarantee monitor's bound."""
    from app.oversight import WatchedPolicy, oversight_weeks
    from app.oversight import percent as _pct

    bench = load_cli_workbench(args, None)
    store = open_cli_store(args, anchor=False, read_only_ok=True)
    try:
        weeks = oversight_weeks(store, WatchedPolicy.of_bench(bench))
    finally:
        store.close()
    if args.json:
        print(json.dumps([w.to_dict() for w in weeks]))
        return 0
    alpha = bench.policy.settings.alpha if bench.policy is not None else None
    print(f"{'week':<9} {'model':<26} {'decided':>7} {'escal.':>7} {'unusual':>7} "
          f"{'reviewed':>8} {'overr.':>7} {'audited':>9} {'AUTO err ≥':>10}")
    for w in weeks:
        bound = "" if w.lower_bound is None else f"{w.lower_bound:.1%}"
        if bound and alpha is not None and w.lower_bound > alpha:
            bound += " > α"
        print(f"{w.week:<9} {w.model_id[:26]:<26} {w.decided:>7} {_pct(w.escalation_rate):>7} "
              f"{_pct(w.unusual_rate):>7} {w.reviewed:>8} {_pct(w.override_rate):>7} "
              f"{f'{w.audited_wrong}/{w.audited}' if w.audited else '':>9} {bound:>10}")
    if alpha is not None:
        print(f"α = {alpha:.0%}: the certified bound of automatic decisions' errors.")
    return 0


def add_history_parsers(commands) -> None:
    score = commands.add_parser("score", help="predict, explain, decide and store every case "
                                              "of a file (re-running skips stored cases)")
    score.add_argument("file", help="CSV, TSV, JSONL, or a folder of .txt files")
    score.add_argument("--text-col", help="column with the text (guessed when obvious)")
    score.add_argument("--encoding", help="file encoding when it is not UTF-8")
    score.add_argument("--keep-cols", metavar="A,B",
                       help="columns stored with each case (default: all but the text; "
                            "\"\" keeps none); an id column also joins the case's source")
    score.add_argument("--llm", action="store_true",
                       help="also ask the LLM about escalated cases (the settings' LLM, as "
                            "the window's batch import asks, unless the options below say)")
    score.add_argument("--llm-backend", choices=("embedded", "local", "openai", "llama-cpp"),
                       help="with --llm: the LLM backend (default: the settings')")
    score.add_argument("--llm-model", help="with --llm: a local model directory or .gguf "
                                           "file, or the server's model name")
    add_llm_server_options(score)
    settings_flags(score, llm_backend="llm_backend", llm_model="llm_model",
                   llm_base_url="base_url", allow_remote="allow_remote")
    score.add_argument("--no-explain", action="store_true", help="skip the attributions")
    score.add_argument("--model", help="model id (default: the active model)")
    score.set_defaults(handler=cmd_score)

    history = commands.add_parser("history", help="list and search the stored cases")
    add_filter_options(history)
    history.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    history.set_defaults(handler=cmd_history)

    review = commands.add_parser("review", help="sign a review of a stored case")
    review.add_argument("case_id", type=int, metavar="ID")
    choice = review.add_mutually_exclusive_group(required=True)
    choice.add_argument("--accept", action="store_true", help="accept the model's label")
    choice.add_argument("--override", metavar="LABEL", help="override with this label")
    choice.add_argument("--defer", action="store_true", help="defer the decision")
    review.add_argument("--reason", help="why (required with --override)")
    review.add_argument("--meaning", choices=MEANINGS,
                        help="what the signature means (default: the settings', reviewed "
                             "unless changed)")
    review.set_defaults(handler=cmd_review)
    add_auth_options(review)
    settings_flags(review, signature_meaning="meaning")

    audit = commands.add_parser("audit", help="the tamper-evident audit trail")
    audit_commands = audit.add_subparsers(title="audit commands", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check the chain, every record, signature and checkpoint, the "
                       "accounts and the append-only guards")
    verify.add_argument("--against", metavar="ID:HASH",
                        help="also prove the history still holds this chain head unchanged "
                             "(as printed on an earlier audit PDF or export)")
    verify.set_defaults(handler=cmd_audit_verify)
    guarantee = audit_commands.add_parser(
        "guarantee", help="does the certified bound still hold on the automatic decisions "
                          "reviewers have since judged? (an anytime-valid lower bound)")
    guarantee.set_defaults(handler=cmd_audit_guarantee)
    weekly = audit_commands.add_parser(
        "weekly", help="per week and model: decisions, escalations, unusual texts, overrides, "
                       "and the audited automatic decisions against α")
    weekly.set_defaults(handler=cmd_audit_weekly)
    for parser in (score, history, review, verify, guarantee, weekly):
        add_db_option(parser)
        parser.add_argument("--json", action="store_true", help="print JSON")

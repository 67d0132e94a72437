"""``redact``: show what would be sent to a remote LLM server after de-identification."""

from __future__ import annotations

import argparse
import json

from models.errors import DataError


def cmd_redact(args: argparse.Namespace) -> int:
    from models.redaction import redact

    if not args.text or not args.text.strip():
        raise DataError("The text to redact is empty: give the text as one argument, "
                        'e.g. python main.py redact "Seen by Dr. Lee on 03/14/2021."')
    result = redact(args.text)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    print(result.text)
    if result.entities:
        print(f"\n{len(result.entities)} identifier(s) replaced:")
        for entity in result.entities:
            print(f"  {entity.type:<12} {entity.start}-{entity.end}  {entity.text!r}")
    else:
        print("\nno identifiers found")
    print(f"detector: {result.detector}")
    return 0


def add_redact_parser(commands) -> None:
    redact = commands.add_parser(
        "redact", help="replace names, dates, numbers and other identifiers by placeholders")
    redact.add_argument("text", help="the text to de-identify")
    redact.add_argument("--json", action="store_true",
                        help='print {"text", "entities": [{"type", "start", "end"}], '
                             '"detector"} as JSON')
    redact.set_defaults(handler=cmd_redact)

"""`baclofen-cds knowledge`: check rules/ (and a site override), or write the review sheet."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cds.knowledge.errors import KnowledgeError
from cds.knowledge.loader import load_knowledge
from cds.knowledge.review import review_html, review_markdown

REVIEW_SHEET = "knowledge-review.md"


def checkout_docs() -> Path | None:
    """docs/ of the source checkout this runs from, where the committed review sheet
    lives; None for an installed copy (then --out is needed)."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    return docs if (docs / REVIEW_SHEET).is_file() else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baclofen-cds knowledge",
        description="Check or review the clinical knowledge in rules/.")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="load rules/ and an override; exit 1 naming any problem")
    review = sub.add_parser("review", help="write the review sheet (Markdown and HTML)")
    review.add_argument("--out", type=Path, default=checkout_docs(),
                        help="directory for knowledge-review.md and .html (default: the "
                             "checkout's docs/, the sheet the committee signs)")
    for command in (check, review):
        command.add_argument("--override", default=os.environ.get("CDS_RULES_OVERRIDE"),
                             help="a site override file (default: CDS_RULES_OVERRIDE)")
    return parser


def run_knowledge_cli(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        knowledge = load_knowledge(args.override or None)
    except KnowledgeError as error:
        print(f"baclofen-cds knowledge: {error}", file=sys.stderr)
        return 1
    if args.action == "check":
        print(f"rules/ ok: {len(knowledge.rules)} rules, {len(knowledge.cards)} card kinds, "
              f"{len(knowledge.signs)} signs, {len(knowledge.thresholds)} thresholds, "
              f"{len(knowledge.products)} products, {len(knowledge.code_sets)} code sets "
              f"(fingerprint {knowledge.fingerprint})")
        return 0
    out = args.out
    if out is None:
        print("baclofen-cds knowledge: not run from a checkout; say where with --out DIR",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    markdown = review_markdown(knowledge)
    sheet = out / REVIEW_SHEET
    sheet.write_text(markdown, encoding="utf-8")
    sheet.with_suffix(".html").write_text(review_html(markdown), encoding="utf-8")
    print(f"wrote {sheet} and {sheet.with_suffix('.html')}")
    return 0

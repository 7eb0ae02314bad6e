"""`baclofen-cds knowledge review` rewrites the committed sheet, and every document that
says how to regenerate it gives that same command."""

from __future__ import annotations

import re

from cds.knowledge import cli, load_knowledge
from cds.knowledge.review import review_markdown
from tests.support import paths

REVIEW_COMMAND = ".venv/bin/baclofen-cds knowledge review"
DOCUMENTS = ("README.md", "rules/README.md", "docs/adding-a-rule.md",
             "tests/unit/test_knowledge.py")


def test_review_writes_the_committed_sheet_by_default():
    args = cli._parser().parse_args(["review"])
    assert args.out == paths.DOCS, "by default the review sheet goes to docs/, not the cwd"


def test_review_writes_where_asked(tmp_path, capsys):
    assert cli.run_knowledge_cli(["review", "--out", str(tmp_path / "sheet")]) == 0
    written = (tmp_path / "sheet" / "knowledge-review.md").read_text(encoding="utf-8")
    assert written == review_markdown(load_knowledge())
    assert (tmp_path / "sheet" / "knowledge-review.html").exists()


def test_every_document_gives_the_same_regeneration_command():
    for name in DOCUMENTS:
        text = (paths.ROOT / name).read_text(encoding="utf-8")
        # Inline code spans and shell lines that run the review command.
        commands = {m.group(0).strip() for m in
                    re.finditer(r"[^`\n]*baclofen-cds knowledge review[^`\n]*", text)}
        assert commands, f"{name} does not say how to regenerate the review sheet"
        assert commands == {REVIEW_COMMAND}, f"{name}: {sorted(commands)}"

"""Where things are in the repository, for tests at any depth."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FIXTURES = ROOT / "fhir_fixtures"

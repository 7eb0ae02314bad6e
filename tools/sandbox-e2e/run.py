"""Drive a real build of the CDS Hooks Sandbox against baclofen-cds in headless Chromium.

    .venv/bin/python tools/sandbox-e2e/run.py --sandbox-build /path/to/sandbox/build
    CDS_SANDBOX_BUILD=/path/to/sandbox/build .venv/bin/python tools/sandbox-e2e/run.py

See tools/sandbox-e2e/README.md for how to get and build the Sandbox. Without a build the
script says so and exits 0 (skipped), so CI stays green without one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sandbox_e2e package beside this script
sys.path.insert(1, str(HERE.parents[1]))  # the repository: tests.support's proxy trap

from sandbox_e2e.browser import CHROMIUM, chromium  # noqa: E402
from sandbox_e2e.fhir_server import FhirServer  # noqa: E402
from sandbox_e2e.patients import all_patients  # noqa: E402
from sandbox_e2e.probe_flow import run_probe  # noqa: E402
from sandbox_e2e.processes import REPO, StaticSite  # noqa: E402
from sandbox_e2e.results import Results  # noqa: E402
from sandbox_e2e.service_flow import run_mode  # noqa: E402

ENV_BUILD = "CDS_SANDBOX_BUILD"
SKIP_MESSAGE = (f"no CDS Hooks Sandbox build given (--sandbox-build DIR or {ENV_BUILD}=DIR); "
                "see tools/sandbox-e2e/README.md to build one")
DOC_SCREENSHOTS = {  # name in the run's output -> name in docs/screenshots/
    "sandbox-services-auth-on": "sandbox-services.png",
    "sandbox-patient-view-auth-on": "sandbox-patient-view.png",
    "sandbox-order-sign-stop-auth-on": "sandbox-rx-sign-stop-card.png",
    # Sign -> card -> Accept -> Sign -> no warning (a cut to 10 mg tablets, Rx Sign).
    "sandbox-accept-1-drafted-auth-on": "sandbox-accept-1-drafted.png",
    "sandbox-accept-2-card-auth-on": "sandbox-accept-2-card.png",
    "sandbox-accept-3-accepted-auth-on": "sandbox-accept-3-accepted.png",
    "sandbox-accept-4-signed-again-auth-on": "sandbox-accept-4-signed-again.png",
}


def why_not_runnable(build: Path | None) -> str | None:
    if build is None:
        return SKIP_MESSAGE
    if not (build / "index.html").is_file() or not (build / "app.bundle.js").is_file():
        return (f"{build} is not a Sandbox build (no index.html and app.bundle.js; "
                "run npm run build)")
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing (./dev.sh setup installs the test extra)"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox-build", type=Path, default=os.environ.get(ENV_BUILD) or None,
                        help=f"the Sandbox's build directory (default: ${ENV_BUILD})")
    parser.add_argument("--out", type=Path, default=REPO / "test-output" / "sandbox-e2e",
                        help="screenshots, logs, databases and results.md")
    parser.add_argument("--auth", choices=["off", "on", "both"], default="both")
    parser.add_argument("--no-probe", action="store_true",
                        help="skip the suggestion-shape probe")
    parser.add_argument("--capture", type=Path, default=None,
                        help="save the Sandbox's requests here (tools/sandbox-e2e/captured)")
    parser.add_argument("--doc-screenshots", action="store_true",
                        help="copy the key screenshots to docs/screenshots/")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    build = args.sandbox_build.resolve() if args.sandbox_build else None
    reason = why_not_runnable(build)
    if reason is not None:
        if build is None:
            print(f"sandbox-e2e: SKIPPED: {reason}")
            return 0
        print(f"sandbox-e2e: cannot run: {reason}")
        return 2
    assert build is not None
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    order_patients, view_patients = all_patients(datetime.now(UTC))
    resources = [r for p in (*order_patients.values(), *view_patients) for r in p.resources]
    fhir = FhirServer(resources).start()
    site = StaticSite(build).start()
    results = Results()
    try:
        with chromium() as browser:
            for auth in {"off": [False], "on": [True], "both": [False, True]}[args.auth]:
                run_mode(browser, auth, out, site.base_url, fhir.base_url, order_patients,
                         view_patients, results, args.capture if not auth else None)
            if not args.no_probe:
                run_probe(browser, site.base_url, fhir.base_url, out,
                          order_patients["tablets"].patient_id, results, args.capture)
    finally:
        site.stop()
        fhir.stop()
    (out / "results.md").write_text(results.markdown())
    if args.doc_screenshots:
        for name, doc_name in DOC_SCREENSHOTS.items():
            if (out / f"{name}.png").exists():
                shutil.copy(out / f"{name}.png", REPO / "docs" / "screenshots" / doc_name)
    failed = [s for s in results.steps if s.status != "pass"]
    print(f"sandbox-e2e: {len(results.steps) - len(failed)} of {len(results.steps)} steps "
          f"passed; results in {out / 'results.md'}")
    return 0 if results.passed else 1


if __name__ == "__main__":
    sys.exit(main())

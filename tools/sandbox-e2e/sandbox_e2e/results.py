"""Step results: each check passes, fails or could not run, with what it saw."""

from __future__ import annotations

from dataclasses import dataclass, field

PASS, FAIL, ERROR = "pass", "FAIL", "ERROR"


@dataclass
class Step:
    mode: str  # "auth off", "auth on" or "probe"
    name: str
    status: str
    detail: str


@dataclass
class Results:
    steps: list[Step] = field(default_factory=list)

    def add(self, mode: str, name: str, ok: bool, detail: str) -> bool:
        self.steps.append(Step(mode, name, PASS if ok else FAIL, detail))
        print(f"[{mode}] {'pass' if ok else 'FAIL'}: {name}: {detail}", flush=True)
        return ok

    def error(self, mode: str, name: str, error: BaseException) -> None:
        detail = f"{type(error).__name__}: {str(error)[:600]}"
        self.steps.append(Step(mode, name, ERROR, detail))
        print(f"[{mode}] ERROR: {name}: {detail}", flush=True)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.status == PASS for s in self.steps)

    def markdown(self) -> str:
        lines = ["| mode | step | result | what it showed |", "|---|---|---|---|"]
        for s in self.steps:
            detail = s.detail.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {s.mode} | {s.name} | {s.status} | {detail} |")
        return "\n".join(lines) + "\n"

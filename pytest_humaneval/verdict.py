"""Step 5 of the data path: one program's verdict, in the form that travels on test reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PASSED = "passed"
#: Every status a program can end with; all but ``passed`` count as failures.
STATUSES = (
    PASSED,
    "failed",  # an assertion in check() failed
    "error",  # an exception, with its type
    "timeout",
    "crashed",  # killed by a signal or exited before check() returned
    "syntax_error",
    "no_code",  # empty answer or no completion for the task
    "truncated",  # the model's answer was cut by max_tokens
    "generation_error",  # the model server failed for this sample
    "sandbox_error",  # the harness could not run the program (not the model's failure: left out of pass@k)
)
#: Statuses that are the harness's failure, not the program's: the item is a pytest ERROR and the program is
#: left out of pass@k's denominator.
HARNESS_STATUSES = ("sandbox_error",)


@dataclass
class Result:
    """The verdict on one program (task, sample)."""

    task_id: str
    sample: int
    status: str
    reason: str = ""
    duration_s: float = 0.0
    exc_type: str | None = None
    known_defect: str | None = None
    stdout: str = ""
    stderr: str = ""
    completion: str = ""
    #: --humaneval-efficiency, passing programs: ratio, ci95, runs, ... or error (analysis.efficiency)
    efficiency: dict[str, Any] | None = None
    #: --humaneval-diagnose, failing programs: similarity, and the judge's answer (analysis.diagnosis)
    diagnosis: dict[str, Any] | None = None
    #: --think=both: "think" or "no-think"; None with one mode
    mode: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def scored(self) -> bool:
        """Counts in pass@k: a verdict on the program, not a failure of the harness."""
        return self.status not in HARNESS_STATUSES

    @property
    def output(self) -> str:
        """What the program printed: stdout, then stderr after a ``[stderr]`` line."""
        return self.stdout + (("\n[stderr]\n" + self.stderr) if self.stderr else "")

    def to_dict(self) -> dict[str, Any]:
        # Every field is a plain value: no dataclasses.asdict, whose deep copy cost more than the rest of
        # an item's report.
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["passed"] = self.passed
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in fields})

    @classmethod
    def from_runner(cls, task_id: str, sample: int, raw: dict[str, Any], completion: str) -> Result:
        """The verdict from the sandbox's answer; a malformed answer keeps its row, as an error saying so."""
        status = raw.get("status", "crashed")
        reason = raw.get("reason", "")
        if not isinstance(reason, str) or not isinstance(status, str):
            status, reason = (
                "error",
                f"a malformed verdict (status {status!r:.40}, reason {type(reason).__name__})",
            )
        if raw.get("output_dropped"):
            reason += f" [output capped: {raw['output_dropped']} bytes dropped]"
        try:
            duration = float(raw.get("duration_s", 0.0))
        except (TypeError, ValueError):
            duration = 0.0
        exc_type, stdout, stderr = raw.get("exc_type"), raw.get("stdout", ""), raw.get("stderr", "")
        return cls(
            task_id=task_id,
            sample=sample,
            status=status if status in STATUSES else "crashed",
            reason=reason.strip(),
            duration_s=duration,
            exc_type=exc_type if isinstance(exc_type, str) else None,
            stdout=stdout if isinstance(stdout, str) else "",
            stderr=stderr if isinstance(stderr, str) else "",
            completion=completion,
        )

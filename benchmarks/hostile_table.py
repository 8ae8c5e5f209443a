"""The hostile families against a checkout of the plugin: what each forgery and each isolation scenario gets.

    python benchmarks/hostile_table.py [--checkout=DIR] [--python=PY] [--user=NAME] [--sandbox=subprocess]

Runs ``tests/hostile.py``'s forgery family (each forgery, a wrong program, on each of the four datasets,
through the plugin) and its isolation family (``tests/isolation_probe.py``) with the plugin of
``--checkout`` (default: this one), by ``--python`` (default: this interpreter) as ``--user`` (default:
whoever runs this), and prints one markdown table of statuses each. Run it on an older checkout (``git
worktree add /tmp/old REV``) to see what changed: a forgery must never come back ``passed``, and an
isolation scenario must get its expected statuses (and reach nothing on the host). The probe and the
families are always this checkout's, so both sides face the same programs.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from hostile import FORGERY_TARGETS, ISOLATION, write_forgeries  # noqa: E402


def forgeries(checkout: Path, python: str, sandbox: str) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    for dataset, (task_id, entry, _) in FORGERY_TARGETS.items():
        work = Path(tempfile.mkdtemp(prefix="hostile-table-"))
        names = write_forgeries(work / "forged.jsonl", dataset)
        cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--humaneval"]
        cmd += [f"--humaneval-dataset={dataset}", f"--humaneval-completions={work / 'forged.jsonl'}"]
        cmd += [f"--humaneval-report={work / 'report.json'}", f"--humaneval-sandbox={sandbox}", "-k", entry]
        cmd += ["--humaneval-sandbox-image=pytest-humaneval-test-base:latest"]
        subprocess.run(cmd, cwd=work, env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True)
        rows = json.loads((work / "report.json").read_text())["results"]
        for r in rows:
            if r["task_id"] == task_id:
                table.setdefault(names[r["sample"]], {})[dataset] = r["status"]
    return table


def isolation(checkout: Path, python: str, user: str | None) -> dict[str, str]:
    top = Path(tempfile.mkdtemp(prefix="hostile-table-host-"))
    top.chmod(0o755)
    server = socket.socket(socket.AF_UNIX)  # a host service anyone may connect to, and a tmux server
    server.bind(str(top / "service.sock"))
    os.chmod(top / "service.sock", 0o777)
    server.listen(8)
    (top / "tmux").mkdir(mode=0o755)
    tmux = str(top / "tmux" / "default")
    subprocess.run(["tmux", "-S", tmux, "new-session", "-d", "sleep 600"], check=False)
    if (top / "tmux" / "default").exists():
        os.chmod(top / "tmux" / "default", 0o777)
    (top / "out").mkdir(mode=0o777)
    os.chmod(top / "out", 0o777)
    out: dict[str, str] = {}
    who: dict[str, Any] = {}
    if user:
        entry = pwd.getpwnam(user)
        who = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    for scenario in ISOLATION:
        args = [str(top / "service.sock"), str(top / "tmux" / "default"), str(top / "out" / "pwned")]
        args.append(f"m{uuid.uuid4().hex[:8]}")
        proc = subprocess.run(
            [python, str(ROOT / "tests" / "isolation_probe.py"), scenario.name, *args],
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(checkout)},
            cwd=top,
            capture_output=True,
            text=True,
            **who,
        )
        try:
            verdicts = json.loads(proc.stdout.strip().splitlines()[-1])["verdicts"]
        except (IndexError, ValueError, KeyError):
            out[scenario.name] = "did not run: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:80]
            continue
        statuses = [v["status"] for v in verdicts]
        ok = all(s in allowed for s, allowed in zip(statuses, scenario.expect, strict=True))
        reached = (top / "out" / "pwned").exists()
        try:
            server.setblocking(False)
            server.accept()
            reached = True
        except BlockingIOError:
            pass
        ok = ok and not reached
        out[scenario.name] = ("held" if ok else "BROKEN") + f" ({', '.join(statuses)})"
    subprocess.run(["tmux", "-S", str(top / "tmux" / "default"), "kill-server"], capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--user", default=None)
    parser.add_argument("--sandbox", default="subprocess")
    parser.add_argument("--skip-forgeries", action="store_true")
    args = parser.parse_args()
    if not args.skip_forgeries:
        table = forgeries(args.checkout.resolve(), args.python, args.sandbox)
        datasets = list(FORGERY_TARGETS)
        print("| forgery | " + " | ".join(datasets) + " |")
        print("| --- |" + " --- |" * len(datasets))
        for name, row in table.items():
            print(f"| {name} | " + " | ".join(row.get(d, "-") for d in datasets) + " |")
        print()
    print("| isolation scenario | outcome |\n| --- | --- |")
    for name, outcome in isolation(args.checkout.resolve(), args.python, args.user).items():
        print(f"| {name} | {outcome} |")


if __name__ == "__main__":
    main()

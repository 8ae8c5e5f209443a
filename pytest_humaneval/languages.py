"""Programs in languages other than Python: how HumanEval-X builds, compiles and runs each one.

The construction is CodeGeeX's (``evaluate_humaneval_x.py``, ``execution.py``): C++ gets the standard headers
its prompt lacks, then prompt + completion + test, built with ``g++ -std=c++11``; JavaScript is prompt +
completion + test run by ``node``, and passes only when it prints nothing (``console.assert`` only prints);
Java is prompt + completion + test as ``Main.java``. A program passes when it exits 0, as there, and also only
when it reached the end of its test's ``main``: a completion that ends the process early (``exit(0)`` in the
function) fails here, where the official harness passes it.

A language task's sandbox job is a small Python driver (``run_program``): in the sandboxed program's own
process (its namespaces, uid, cgroup and limits) it writes the files, compiles, runs, and answers with the
verdict; the test (in the judge) passes only that answer's ``passed``. The compiler and the program are the
driver's children, so the program's limits bound them too. Time is CPU time: the build gets its language's
allowance, the program its problem's limit (RLIMIT_CPU on each step), so a loaded machine does not fail a
correct program; a wall-clock bound far above (:meth:`Language.wall_backstop`) stops one that sleeps.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import shared_builds
from .datasets import livecodebench
from .datasets.dataset import Dataset, Problem
from .errors import HumanEvalError
from .options import DEFAULT_SANDBOX_IMAGE, DEFAULT_TOOLCHAIN_IMAGE
from .sandbox.base import MAX_STRETCH

#: The name of the driver function the sandbox job calls.
DRIVER_ENTRY = "run_program"
#: The file a program's test writes (with the job's nonce) once its main has run to the end.
DONE_FILE = ".humaneval-done"
#: Marks a verdict the driver serialised into the test's failure message (see :func:`verdict_from_reason`).
VERDICT_MARK = "humaneval-verdict:"

#: CodeGeeX's IMPORT_HELPER for C++: each header the prompt does not include comes first.
CPP_HEADERS = (
    "#include<stdlib.h>",
    "#include<algorithm>",
    "#include<math.h>",
    "#include<stdio.h>",
    "#include<vector>",
    "#include<string>",
    "#include<climits>",
    "#include<cstring>",
    "#include<iostream>",
)

#: A JVM under the program's address-space limit: without these it reserves 1 GB of class space and a
#: code cache at start and cannot start under 2 GB; one compiler thread and the serial GC keep its
#: thread count (the program's process limit) low on a machine with many cores.
JVM_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-XX:CICompilerCount=1",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:ReservedCodeCacheSize=32m",
    "-Xmx512m",
    "-Xss1m",
)


@dataclass(frozen=True)
class Language:
    """What the harness knows about a language: its tools, how a program is built, how it is asked for."""

    name: str
    title: str
    #: Fence info strings that mark this language's code blocks in an answer.
    fence_tags: tuple[str, ...]
    #: (executable, what installs it on Debian) for each tool a program needs.
    tools: tuple[tuple[str, str], ...]
    #: CPU seconds a build may take (the program's own limit is the problem's).
    build_s: float
    #: ``(problem, completion, nonce) -> (files, steps)``: the files to write and the commands to run, each
    #: step a dict with ``phase`` (build or run), ``argv``, optional ``input`` (its stdin) and ``env`` (where
    #: ``{cwd}`` is the program's directory); or ``phase`` setup with ``setup``: (file, tree or link, source,
    #: name) to copy or link the shared builds in.
    construct: Callable[[Problem, str, str], tuple[dict[str, str], list[dict[str, object]]]]
    #: Passes only with empty stdout and stderr (JavaScript: ``console.assert`` prints and exits 0).
    quiet: bool = False
    #: What comes before a function's name where it is defined (Go's ``func``, Rust's ``fn``): without it a
    #: call in ``if f(x) {`` would read as a definition. Empty: C-like, the name then ``(``.
    definer: str = ""
    #: The word that marks the line of a failed run's output that says why.
    failure_word: str = "rror"
    #: Builds what every program of the language reads (:mod:`.shared_builds`), once per machine.
    prebuild: Callable[[], object] | None = None
    #: The answer is a whole program (LiveCodeBench), not a function that continues the prompt.
    whole_program: bool = False

    def runs(self, problem: Problem) -> int:
        """How many times a program of ``problem`` runs (once per test case for a whole program)."""
        return len(stdio_cases(problem.test)["inputs"]) if self.whole_program else 1

    def wall_backstop(self, run_s: float, runs: int = 1) -> float:
        """The job's wall-clock limit. The limits that decide are in CPU seconds (the build's allowance,
        the program's limit), set on each step: the sandbox's fair-share stretch sees only the driver's
        process, not the compiler's and the program's waits on a loaded machine (64 JVMs on 2 cores timed
        out 69 of 164 correct Java programs). This bound, far above them, stops a program that sleeps."""
        return run_s * MAX_STRETCH * runs + 3 * self.build_s

    def missing_tools(self) -> list[str]:
        """A tool is a command on PATH, or an absolute path (Debian's rustc, not a rustup one)."""
        return [
            f"{tool} ({package})"
            for tool, package in self.tools
            if not (os.access(tool, os.X_OK) if os.path.isabs(tool) else shutil.which(tool))
        ]

    def require_tools(self, dataset: str) -> None:
        """One clear message before anything runs: which tools are missing and what installs them."""
        missing = self.missing_tools()
        if missing:
            raise HumanEvalError(
                f"dataset {dataset!r} needs the {self.title} toolchain, and this machine lacks "
                f"{', '.join(missing)}: install it (`bash .ci/toolchains` in a checkout of pytest-humaneval "
                "does it on Debian)"
            )


def _hoisted(code: str, pattern: re.Pattern[str]) -> tuple[str, str]:
    """(the lines of ``code`` matching ``pattern``, the rest): a completion's own ``#include``/``import``
    lines, which only work at the top of the file."""
    top: list[str] = []
    rest: list[str] = []
    for line in code.split("\n"):
        (top if pattern.match(line) else rest).append(line)
    return "".join(line + "\n" for line in top), "\n".join(rest)


_CPP_INCLUDE = re.compile(r"\s*#\s*include\b")
_JAVA_IMPORT = re.compile(r"\s*import\s+[\w.]+(\.\*)?\s*;\s*$")


#: A function defined at the top level of C++ code: its signature up to the body's ``{``.
_CPP_FUNCTION = re.compile(
    r"^[ \t]*((?:[\w:<>,*&]+[ \t*&]+)+(\w+)[ \t]*\([^;{}()]*\)[ \t]*(?:const[ \t]*)?)\{", re.M
)


def cpp_prototypes(completion: str) -> str:
    """Declarations of the functions a completion defines after the asked one (a chat answer's helpers,
    which its own file had defined before it): the asked function may call them. None with default
    arguments (a second declaration of a default is an error)."""
    end = function_end(completion)
    rest = completion[end:] if end is not None else ""
    depth_at = {0: 0}  # the brace depth at the start of each line, in one pass
    depth = 0
    for i in code_chars(rest):
        depth += {"{": 1, "}": -1}.get(rest[i], 0)
        if rest[i] == "\n":
            depth_at[i + 1] = depth
    prototypes = []
    for m in _CPP_FUNCTION.finditer(rest):
        before = rest[: m.start()].rstrip().rsplit("\n", 1)[-1]
        template = before.lstrip().startswith("template") or m.group(1).lstrip().startswith("template")
        top_level = depth_at.get(m.start()) == 0
        if top_level and not template and "=" not in m.group(1) and m.group(2) not in _KEYWORDS | {"main"}:
            prototypes.append(" ".join(m.group(1).split()) + ";\n")
    return "".join(prototypes)


def _cpp(problem: Problem, completion: str, nonce: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    headers = "".join(h + "\n" for h in CPP_HEADERS if h not in problem.prompt)
    includes, completion = _hoisted(completion, _CPP_INCLUDE)
    prompt = problem.prompt
    prototypes = cpp_prototypes(completion)
    opens = list(re.finditer(rf"\b{re.escape(opened_function(prompt))}\s*\(", prompt))
    if prototypes and opens:  # before the line that opens the asked function, after its includes and usings
        at = prompt.rfind("\n", 0, opens[-1].start()) + 1
        prompt = prompt[:at] + prototypes + prompt[at:]
    source = (
        f"{includes}{headers}\n{prompt}{completion}\n"
        f"#define main humaneval_test_main\n{problem.test}\n#undef main\n"
        "#include <cstdio>\n"
        "#include <unistd.h>\n"
        "int main() {\n"  # the nonce comes on stdin, read before any of the program runs: not in the binary
        "    char nonce[64];\n"
        "    ssize_t got = read(0, nonce, sizeof nonce);\n"
        "    close(0);\n"
        "    humaneval_test_main();\n"
        f'    FILE *done = fopen("{DONE_FILE}", "w");\n'
        "    if (done && got > 0) { fwrite(nonce, 1, (size_t)got, done); fclose(done); }\n"
        "    return 0;\n"
        "}\n"
    )
    libs = ["-lcrypto", "-lssl"] if "openssl/" in problem.prompt + problem.test else []
    build: dict[str, object] = {
        "phase": "build",
        "argv": ["g++", "-std=c++11", "-o", "main", "main.cpp", *libs],
    }
    run: dict[str, object] = {"phase": "run", "argv": ["./main"], "input": nonce}
    return {"main.cpp": source}, [build, run]


def _js(problem: Problem, completion: str, nonce: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    source = (
        f"{problem.prompt}{completion}\n{problem.test}\n"
        f";require('fs').writeFileSync({DONE_FILE!r}, {nonce!r});\n"
    )
    # Through a pipe, no file: the program cannot read the nonce back out of its source (node reads all of
    # it before it runs a line).
    return {}, [
        {
            "phase": "run",
            "argv": ["node", "-"],
            "input": source,
            "env": {"NODE_PATH": shared_builds.node_path()},
        }
    ]


def _java(problem: Problem, completion: str, nonce: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    imports, completion = _hoisted(completion, _JAVA_IMPORT)
    wrapper = (
        "public class HumanEvalMain {\n"
        "    public static void main(String[] args) throws Exception {\n"
        "        String nonce = new String(System.in.readAllBytes());\n"  # a local: no class file holds it
        "        System.in.close();\n"
        "        Main.main(args);\n"
        f'        java.nio.file.Files.writeString(java.nio.file.Path.of("{DONE_FILE}"), nonce);\n'
        "    }\n"
        "}\n"
    )
    files = {
        "Main.java": f"{imports}{problem.prompt}{completion}\n{problem.test}",
        "HumanEvalMain.java": wrapper,
    }
    javac = [
        "javac",
        *(f"-J{flag}" for flag in JVM_FLAGS),
        "-encoding",
        "UTF-8",
        "Main.java",
        "HumanEvalMain.java",
    ]
    run: dict[str, object] = {
        "phase": "run",
        "argv": ["java", *JVM_FLAGS, "-cp", ".", "HumanEvalMain"],
        "input": nonce,
    }
    return files, [{"phase": "build", "argv": javac}, run]


#: The standard packages a HumanEval-X Go file may use without importing them (CodeGeeX's IMPORT_HELPER,
#: and unicode), each with a name it exports: the file imports the ones its code mentions, and refers to
#: each once, so a mention in a comment or a string is not an "imported and not used" error.
GO_PACKAGES = {
    "math": "Abs",
    "strings": "Contains",
    "fmt": "Sprint",
    "strconv": "Itoa",
    "time": "Now",
    "bytes": "Equal",
    "regexp": "MustCompile",
    "sort": "Ints",
    "math/rand": "Intn",
    "crypto/md5": "Sum",
    "unicode": "IsUpper",
}
_GO_IMPORT_BLOCK = re.compile(r"^[ \t]*import[ \t]*\((.*?)\)[ \t]*$\n?", re.M | re.S)
_GO_IMPORT_LINE = re.compile(r"^[ \t]*import[ \t]+((?:[\w.]+[ \t]+)?\"[^\"]+\")[ \t]*;?[ \t]*$\n?", re.M)
_GO_IMPORT_SPEC = re.compile(r"((?:[\w.]+[ \t]+)?)\"([^\"]+)\"")
_GO_PACKAGE = re.compile(r"^[ \t]*package[ \t]+\w+[ \t]*;?[ \t]*$\n?", re.M)


def go_imports(code: str) -> tuple[dict[str, str], str]:
    """({path: alias}, the code without its package clause and import declarations)."""
    found: dict[str, str] = {}

    def take(m: re.Match[str]) -> str:
        for spec in _GO_IMPORT_SPEC.finditer(m.group(1)):
            found.setdefault(spec.group(2), spec.group(1).strip())
        return ""

    code = _GO_IMPORT_BLOCK.sub(take, _GO_PACKAGE.sub("", code))
    return found, _GO_IMPORT_LINE.sub(take, code)


def go_header(imports: dict[str, str], code: str) -> str:
    """``package main``, the imports (``imports``, and each of :data:`GO_PACKAGES` that ``code`` mentions),
    and one reference to each of the latter."""
    wanted = dict(imports)
    for path in GO_PACKAGES:
        if re.search(rf"\b{path.rsplit('/', 1)[-1]}\.", code):
            wanted.setdefault(path, "")
    lines = "".join(f'    {alias + " " if alias else ""}"{path}"\n' for path, alias in wanted.items())
    uses = "".join(
        f"var _ = {alias or path.rsplit('/', 1)[-1]}.{GO_PACKAGES[path]}\n"
        for path, alias in wanted.items()
        if path in GO_PACKAGES and alias not in ("_", ".")
    )
    return f"package main\n\nimport (\n{lines})\n\n{uses}\n"


def _go(problem: Problem, completion: str, nonce: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    """CodeGeeX's Go construction, in three files of one test package: the solution (the prompt without its
    imports, then the completion), the test (its setup and test function) and a ``TestMain`` that proves the
    tests ran to the end. Each file imports the packages it mentions."""
    module = shared_builds.go_module()
    prompt_imports, prompt = go_imports(problem.prompt)
    own_imports, completion = go_imports(completion)
    code = prompt + completion
    setup_imports, test = go_imports(problem.test)
    main = (
        'package main\n\nimport (\n    "io"\n    "os"\n    "testing"\n)\n\n'
        "func TestMain(m *testing.M) {\n"
        "    nonce, _ := io.ReadAll(os.Stdin)\n"  # before the tests run; a local, in no file
        "    os.Stdin.Close()\n"
        "    code := m.Run()\n"
        f'    if code == 0 {{\n        os.WriteFile("../{DONE_FILE}", nonce, 0o600)\n    }}\n'
        "    os.Exit(code)\n"
        "}\n"
    )
    files = {  # in a directory of its own: go ignores a go.mod in the system's temp root (the work dir)
        "m/solution_test.go": go_header({**prompt_imports, **own_imports}, code) + code + "\n",
        "m/main_test.go": go_header(setup_imports, test) + test,
        "m/humaneval_main_test.go": main,
    }
    setup = [  # the module beside the files; the shared build cache is read-only
        ("file", f"{module}/go.mod", "m/go.mod"),
        ("file", f"{module}/go.sum", "m/go.sum"),
        ("link", f"{module}/vendor", "m/vendor"),
    ]
    env = {**shared_builds.GO_ENV, "GOCACHE": f"{module}/gocache", "GOPATH": "{cwd}/.gopath"}
    env["GOMAXPROCS"] = "2"
    build = [shared_builds.go(), "test", "-c", "-p", "1", "-o", "main.test", "."]
    run = ["./main.test", "-test.paniconexit0", "-test.count=1"]
    return files, [
        {"phase": "setup", "setup": setup},
        {"phase": "build", "argv": build, "env": env, "dir": "m"},
        {"phase": "run", "argv": run, "input": nonce, "env": {"GOMAXPROCS": "2"}, "dir": "m"},
    ]


_RUST_USE = re.compile(r"^[ \t]*(?:pub[ \t]+)?use[ \t]+([^;]*);[ \t]*$\n?", re.M)


def _use_names(tree: str) -> set[str]:
    """The names a ``use`` tree brings in (``std::{a, b::{c as d}}``: a, d)."""
    names = set()
    for leaf in re.split(r"[{},]", tree):
        leaf = leaf.strip()
        if leaf:
            names.add(leaf.split(" as ")[-1].strip().rsplit("::", 1)[-1])
    return names - {"self", "*", ""}


def rust_prompt(declaration: str, docstring: str) -> str:
    """The prompt shown for a HumanEval-X Rust problem: the declaration's ``use`` lines, the docstring, then
    the signature (CodeGeeX puts the docstring after the signature, where it is a comment in the body)."""
    lines = declaration.rstrip("\n").split("\n")
    at = max(i for i, line in enumerate(lines) if re.match(r"\s*(pub\s+)?fn\s", line))
    return (
        "\n".join(lines[:at]).rstrip("\n")
        + "\n"
        + docstring.strip("\n")
        + "\n"
        + "\n".join(lines[at:])
        + "\n"
    )


def _rust(problem: Problem, completion: str, nonce: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    """CodeGeeX's Rust construction (``fn main(){}``, the declaration, the prompt, the completion, the test)
    built with ``rustc --test``; a completion's ``use`` of names the declaration brings in already is
    dropped (a second ``use`` of a name is an error). Two tests of ours run first and last (libtest runs
    them by name, one at a time): the first reads the nonce, the last writes it once every test passed."""
    have = set().union(*(_use_names(m.group(1)) for m in _RUST_USE.finditer(problem.prompt)))
    completion = _RUST_USE.sub(lambda m: "" if _use_names(m.group(1)) <= have else m.group(0), completion)
    tag = secrets.token_hex(4)  # names no completion can refer to
    proof = (
        "\n#[cfg(test)]\n"
        f"static HUMANEVAL_NONCE_{tag}: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());\n"
        f"#[test]\nfn AAAA_humaneval_{tag}_first() {{\n"
        "    use std::io::Read;\n"
        "    let mut nonce = String::new();\n"
        "    std::io::stdin().read_to_string(&mut nonce).unwrap();\n"
        f"    *HUMANEVAL_NONCE_{tag}.lock().unwrap() = nonce;\n"
        "}\n"
        f"#[test]\nfn zzzz_humaneval_{tag}_last() {{\n"
        f'    std::fs::write("{DONE_FILE}", HUMANEVAL_NONCE_{tag}.lock().unwrap().as_str()).unwrap();\n'
        "}\n"
    )
    source = f"fn main(){{}}\n{problem.prompt}{completion}\n{problem.test}\n{proof}"
    crates = shared_builds.rust_crates()
    externs = [arg for name, path in crates.items() if name for arg in ("--extern", f"{name}={path}")]
    # No debug info, and the standard library's stripped: 21 MB otherwise, over the file-size limit.
    build = [shared_builds.rustc(), "--edition", "2021", "--test", "-A", "warnings", "-o", "main"]
    build += ["-C", "debuginfo=0", "-C", "strip=debuginfo"]
    build += ["-L", f"dependency={crates['']}", *externs, "main.rs"]
    run = ["./main", "--test-threads=1"]
    return {"main.rs": source}, [
        {"phase": "build", "argv": build},
        {"phase": "run", "argv": run, "input": nonce, "env": {"RUST_BACKTRACE": "0"}},
    ]


#: What LiveCodeBench's judge puts before every program: these modules imported, and their names.
STDIO_MODULES = (
    "string",
    "re",
    "datetime",
    "collections",
    "heapq",
    "bisect",
    "copy",
    "math",
    "random",
    "statistics",
    "itertools",
    "functools",
    "operator",
    "io",
    "sys",
    "json",
)
STDIO_PRELUDE = (
    "".join(f"from {module} import *\n" for module in (*STDIO_MODULES, "builtins", "typing"))
    + "".join(f"import {module}\n" for module in STDIO_MODULES)
    + "sys.setrecursionlimit(50000)\n"
)
#: A call-based (LeetCode) problem: the arguments, one JSON value a line, on stdin; the value returned, as
#: JSON, in a file the judge reads (what the program prints is its own).
STDIO_CALL = """
def __humaneval_call():
    import json as _json, sys as _sys
    args = [_json.loads(line) for line in _sys.stdin.read().split("\\n")]
    result = Solution().{name}(*args)
    with open("{result}", "w") as fh:
        _json.dump(list(result) if isinstance(result, tuple) else result, fh)


__humaneval_call()
"""
STDIO_RESULT = ".humaneval-result.json"


@functools.lru_cache(maxsize=64)
def stdio_cases(test: str) -> dict[str, Any]:
    """A whole-program problem's test cases (LiveCodeBench's ``input_output``), parsed once: its job and
    its wall bound both read them, for every sample."""
    cases: dict[str, Any] = json.loads(test)
    return cases


def _stdio(problem: Problem, completion: str, nonce: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    """A whole Python program, run once per test case (LiveCodeBench's judge): compared on its output line
    by line (exact, or number by number as decimals), or, for a call-based problem, on the value
    ``Solution().name(*args)`` returns."""
    cases = stdio_cases(problem.test)
    name = cases.get("fn_name")
    source = STDIO_PRELUDE + completion
    if name:
        source += "\n" + STDIO_CALL.format(name=name, result=STDIO_RESULT)
    steps: list[dict[str, object]] = []
    for i, (given, expected) in enumerate(zip(cases["inputs"], cases["outputs"], strict=True)):
        steps.append(
            {
                "phase": "run",
                "argv": ["{python}", "main.py"],
                "input": given,
                "expect": expected,
                "compare": "value" if name else "lines",
                "case": f"{i + 1} of {len(cases['inputs'])}",
            }
        )
    return {"main.py": source}, steps


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        Language("cpp", "C++", ("cpp", "c++", "cc", "cxx", "c"), (("g++", "g++"),), 20.0, _cpp),
        Language(
            "js", "JavaScript", ("javascript", "js", "node", "nodejs"), (("node", "nodejs"),), 0.0, _js, True
        ),
        Language(
            "java",
            "Java",
            ("java",),
            (("javac", "default-jdk-headless"), ("java", "default-jdk-headless")),
            30.0,
            _java,
        ),
        Language(
            "go",
            "Go",
            ("go", "golang"),
            (("go", "golang-go"),),
            30.0,
            _go,
            definer=r"\bfunc\s+(?:\([^()]*\)\s*)?",
            failure_word="Error",
            prebuild=shared_builds.go_module,
        ),
        Language(
            "rust",
            "Rust",
            ("rust", "rs"),
            (("/usr/bin/rustc", "rustc"), ("/usr/bin/cargo", "cargo")),
            30.0,
            _rust,
            definer=r"\bfn\s+",
            failure_word="panicked",
            prebuild=shared_builds.rust_crates,
        ),
        Language(
            "stdio",
            "Python program (standard input and output)",
            ("python", "py", "python3"),
            (),
            0.0,
            _stdio,
            failure_word="Error",
            whole_program=True,
        ),
    )
}


def language_of(problem: Problem) -> Language | None:
    """The problem's language, or None for Python (the sandbox's own kind of job)."""
    if problem.language == "python":
        return None
    try:
        return LANGUAGES[problem.language]
    except KeyError:
        raise HumanEvalError(
            f"{problem.task_id}: language {problem.language!r} is not one pytest-humaneval runs "
            f"(python, {', '.join(LANGUAGES)})"
        ) from None


#: The driver, run in the sandboxed program's process. Standard library only; it never raises for what the
#: program does (every outcome is an answer), so the test's failure message carries the verdict.
DRIVER = """
def run_program():
    import ctypes, json, os, resource, signal, subprocess, sys
    try:  # not dumpable: a program (its child) cannot read this process's memory (the expected outputs)
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    spec = json.loads(SPEC)
    for name, text in spec["files"].items():
        if os.path.dirname(name):
            os.makedirs(os.path.dirname(name), exist_ok=True)
        with open(name, "w", encoding="utf-8") as fh:
            fh.write(text)
    cwd = os.getcwd()
    env = dict(os.environ, TMPDIR=cwd, HOME=cwd)
    env["PATH"] = env.get("PATH") or "/usr/local/bin:/usr/bin:/bin"

    def tail(name, size=2000):
        with open(name, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - size))
            return fh.read().decode("utf-8", "replace")

    def verdict(status, reason):
        return VERDICT_MARK + status + "|" + reason

    def same_lines(got, want):  # LiveCodeBench's: line by line, stripped; exact, or equal as decimals
        from decimal import Decimal, InvalidOperation
        got = [line.strip() for line in got.strip().split("\\n")]
        want = [line.strip() for line in want.strip().split("\\n")]
        if len(got) != len(want):
            return False
        for a, b in zip(got, want):
            if a != b:
                try:
                    if [Decimal(x) for x in a.split()] != [Decimal(x) for x in b.split()]:
                        return False
                except (InvalidOperation, ValueError):
                    return False
        return True

    def clip(text, size=200):
        text = text.strip()
        return text if len(text) <= size else text[: size // 2] + " ... " + text[-size // 2 :]

    def first(text, word=""):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return next((line for line in lines if word in line), lines[0] if lines else "")

    for step in spec["steps"]:
        if step["phase"] == "setup":  # the shared builds (read-only) copied or linked in: nothing has run yet
            import shutil
            for kind, source, name in step["setup"]:
                try:
                    if kind == "link":
                        os.symlink(source, name)
                    elif kind == "tree":
                        shutil.copytree(source, name, symlinks=True)
                    else:
                        shutil.copyfile(source, name)
                except OSError as e:
                    return verdict("sandbox_error", "could not set up the build from %s: %s" % (source, e))
            continue
        given = step.get("input")
        seconds = int(step["cpu_s"]) + 1

        def cpu_limit():  # CPU seconds, not wall: a machine loaded many times over does not cut it short
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))

        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = -(used.ru_utime + used.ru_stime)
        with open(".stdout", "wb") as out, open(".stderr", "wb") as err:
            argv = [sys.executable if arg == "{python}" else arg for arg in step["argv"]]
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL if given is None else subprocess.PIPE,
                    stdout=out,
                    stderr=err,
                    env=dict(env, **{k: v.replace("{cwd}", cwd) for k, v in step.get("env", {}).items()}),
                    preexec_fn=cpu_limit,
                    cwd=step.get("dir"),
                )
            except OSError as e:
                return verdict("error", "%s: %s" % (step["argv"][0], e))
            if given is not None:
                try:
                    proc.stdin.write(given.encode("utf-8"))
                    proc.stdin.close()
                except OSError:  # it ended (or closed its input) first: its status says how
                    pass
            try:
                code = proc.wait(timeout=step.get("wall_s"))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                why = "test %s: timed out after %d s" % (step.get("case", ""), step["wall_s"])
                return verdict("timeout", why)
        ended = resource.getrusage(resource.RUSAGE_CHILDREN)
        used += ended.ru_utime + ended.ru_stime
        printed, errors = tail(".stdout"), tail(".stderr")
        print(printed, end="")
        print(errors, end="", file=sys.stderr)
        build = step["phase"] == "build"
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and used >= seconds - 0.5):
            what = "compilation" if build else "the program"
            return verdict("timeout", "%s used up its %d s of CPU time" % (what, seconds - 1))
        if build and code != 0:
            text = "\\n".join(ln for ln in (errors or printed).splitlines() if not ln.startswith("#"))
            why = first(text, "error") if "error" in text else first(text, ".go:")  # go: file:line: what
            return verdict("syntax_error", "compilation failed: " + why)
        if build:
            continue
        if "SyntaxError" in errors and code == 1:  # node: the program does not parse
            return verdict("syntax_error", first(errors, "SyntaxError"))
        if code == -signal.SIGABRT and "Assertion" in errors:  # C/C++ assert(): the test failed
            return verdict("failed", first(errors, "Assertion"))
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            why = first(errors, "rror") if errors.strip() else ""
            return verdict("crashed", "killed by %s%s" % (name, ": " + why if why else ""))
        if code != 0 and "expect" in step and "Traceback" in errors:
            last = [line for line in errors.strip().splitlines() if line.strip()][-1]
            return verdict("error", "test %s: %s" % (step["case"], last.strip()))
        if code != 0:
            return verdict("failed", "exit status %d: %s" % (code, first(errors or printed, spec["word"])))
        if "expect" in step:  # a whole program's test case: its output (or value) against the expected
            if step["compare"] == "value":
                try:
                    with open(spec["result"]) as fh:
                        got = json.load(fh)
                    os.unlink(spec["result"])
                except (OSError, ValueError):
                    return verdict("failed", "test %s: no value came back from the call" % step["case"])
                if got != json.loads(step["expect"]):
                    shown = json.dumps(got)
                    return verdict(
                        "failed",
                        "wrong answer on test %s: got %s, expected %s"
                        % (step["case"], clip(shown), clip(step["expect"])),
                    )
            else:
                with open(".stdout", encoding="utf-8", errors="replace") as fh:
                    got = fh.read()
                if not same_lines(got, step["expect"]):
                    return verdict(
                        "failed",
                        "wrong answer on test %s: printed %r, expected %r"
                        % (step["case"], clip(got), clip(step["expect"])),
                    )
            continue
        if spec["quiet"] and (printed or errors):
            why = first(errors or printed)
            return verdict("failed", "the test printed (a failed console.assert): " + why)
        if spec["done"] is None:
            continue
        try:
            with open(spec["done"]) as fh:
                done = fh.read() == spec["nonce"]
        except OSError:
            done = False
        if not done:
            why = "the program exited (status 0) before its test's main ran to the end"
            return verdict("failed", why)
    return "passed"
"""

#: The test: the driver's answer must be ``passed``; anything else fails, its verdict in the message.
CHECK = """
def check(candidate):
    outcome = candidate()
    assert outcome == "passed", outcome
"""


def program_job_parts(
    language: Language, problem: Problem, completion: str, run_s: float
) -> tuple[str, str, str]:
    """(solution, test, entry point) of the sandbox job for a language task's ``completion``: the driver with
    its files, its steps (each with its CPU seconds: the build's allowance, the program's ``run_s``), and
    the nonce the test's end writes."""
    nonce = secrets.token_hex(16)
    files, steps = language.construct(problem, completion, nonce)
    for step in steps:
        step["cpu_s"] = run_s if step["phase"] == "run" else language.build_s
        if language.whole_program:  # one test case of many: a sleeping one ends at its own wall bound
            step["wall_s"] = int(run_s * MAX_STRETCH) + 1
    spec = {
        "files": files,
        "steps": steps,
        "nonce": nonce,
        "quiet": language.quiet,
        "done": DONE_FILE,
        "word": language.failure_word,
        "result": STDIO_RESULT,
    }
    if language.whole_program:  # judged on its output, case by case: no end of a test to prove
        spec["done"] = None
    solution = f"SPEC = {json.dumps(json.dumps(spec))}\nVERDICT_MARK = {VERDICT_MARK!r}\n{DRIVER}"
    return solution, CHECK, DRIVER_ENTRY


def verdict_from_reason(reason: str) -> tuple[str, str] | None:
    """The (status, reason) the driver put in a failing test's message; None when there is none. Never
    ``passed``: that only comes from the test passing."""
    at = reason.find(VERDICT_MARK)
    if at < 0:
        return None
    status, bar, why = reason[at + len(VERDICT_MARK) :].partition("|")
    if not bar:
        return None
    if status not in ("failed", "error", "crashed", "syntax_error", "timeout", "sandbox_error"):
        status = "failed"
    return status, why


# -- what the prompt asks for ----------------------------------------------------------------------------

_KEYWORDS = frozenset({"if", "for", "while", "switch", "catch", "return", "sizeof", "else"})
_CALLABLE = re.compile(r"(\w+)\s*(?:<[^(){};]*>)?\s*(?:=\s*(?:async\s*)?(?:function\s*)?)?\(")


def opened_function(prompt: str) -> str:
    """The function a HumanEval-X prompt opens last (``name(...) {`` or ``const name = (...) => {``): the
    completion continues its body (CPP/38's prompt ends inside that body)."""
    for line in reversed(prompt.split("\n")):
        if "{" in line and not line.strip().startswith(("//", "*", "/*")):
            for m in _CALLABLE.finditer(line):
                if m.group(1) not in _KEYWORDS:
                    return m.group(1)
    return ""


def entry_point_of(prompt: str, test: str = "") -> str:
    """The function a HumanEval-X problem asks for: the one its prompt opens, unless its test never calls
    that one (Rust/10 opens the helper ``is_palindrome_10``): then the first function the test calls."""
    opened = opened_function(prompt)
    if not test or re.search(rf"\b{re.escape(opened)}\s*\(", test):
        return opened
    body = test[test.find("fn test") :] if "fn test" in test else test
    for m in _CALLABLE.finditer(body):
        if m.group(1) not in _KEYWORDS and not m.group(1).startswith("test"):
            return m.group(1)
    return opened


def template_for(language: Language) -> str:
    """The prompt template of a language's benchmark: complete the function, answer in one fenced block."""
    tag = language.fence_tags[0]
    if language.whole_program:
        return livecodebench.PROMPT_TEMPLATE
    return (
        f"Complete the following {language.title} function `{{entry_point}}`. Reply with the complete "
        f"function (signature and body, and any helper it needs) in a single ```{tag} code block, without a "
        f"main function or tests.\n\n```{tag}\n{{prompt}}\n```\n"
    )


# -- source scanning for extraction --------------------------------------------------------------------


def skip_literal(code: str, i: int) -> int:
    """The index after the comment or string literal at ``i`` (``i`` itself when none starts there)."""
    if code.startswith("//", i):
        end = code.find("\n", i)
        return len(code) if end < 0 else end
    if code.startswith("/*", i):
        end = code.find("*/", i + 2)
        return len(code) if end < 0 else end + 2
    quote = code[i] if i < len(code) else ""
    if quote in "\"'`":
        j = i + 1
        while j < len(code) and code[j] != quote:
            if code[j] == "\\":
                j += 1
            elif code[j] == "\n" and quote != "`":
                return j  # an unterminated literal (or a C++ digit separator): stop at the line's end
            j += 1
        return j + 1
    return i


def code_chars(code: str, start: int = 0) -> Iterator[int]:
    """The indices of ``code`` from ``start`` that are code: comments and string literals skipped."""
    i = start
    while i < len(code):
        after = skip_literal(code, i)
        if after != i:
            i = after
            continue
        yield i
        i += 1


def matching(code: str, start: int) -> int:
    """The index of the bracket closing the one at ``start`` (``(`` or ``{``), or -1."""
    opening = code[start]
    closing = {"(": ")", "{": "}", "[": "]"}[opening]
    depth = 0
    for i in code_chars(code, start):
        if code[i] == opening:
            depth += 1
        elif code[i] == closing:
            depth -= 1
            if depth == 0:
                return i
    return -1


_BEFORE_BODY = re.compile(
    r"\s*(?:=>|const\b|noexcept\b|override\b|throws\s+[\w.,\s]+?(?=\{)|->\s*[\w:<>,\s*&]+?(?=\{))*\s*"
)


#: Between a Go or Rust signature's ``)`` and its body: result types (Go's ``interface{}`` among them).
_RESULT = re.compile(r"(?:(?:interface|struct)\s*\{\s*\}|[^{};])*")


def definition(code: str, name: str, definer: str = "") -> tuple[int, int, int] | None:
    """(start of its line, its body's ``{``, its body's ``}``) of ``name``'s last definition in ``code``;
    ``definer`` is what must come before the name (:attr:`Language.definer`)."""
    found = None
    if definer:
        pattern, gap_after = re.compile(rf"{definer}{re.escape(name)}\s*(?:<[^{{}};]*?>)?\s*\("), _RESULT
    else:
        pattern = re.compile(rf"\b{re.escape(name)}\s*(?:=\s*(?:async\s*)?(?:function\s*\w*\s*)?)?\(")
        gap_after = _BEFORE_BODY
    for m in pattern.finditer(code):
        close = matching(code, m.end() - 1)
        if close < 0:
            continue
        gap = gap_after.match(code, close + 1)
        brace = gap.end() if gap else close + 1
        if brace < len(code) and code[brace] == "{":
            end = matching(code, brace)
            if end > 0:
                found = (code.rfind("\n", 0, m.start()) + 1, brace, end)
    return found


def without_definition(code: str, name: str, definer: str = "") -> str:
    """``code`` without the definition of ``name`` (a ``main``, a test class's method)."""
    while (found := definition(code, name, definer)) is not None:
        start, _, end = found
        code = code[:start] + code[end + 1 :]
    return code


_RUST_TEST_MODULE = re.compile(r"(?:#\[cfg\(test\)\]\s*)?\bmod\s+tests\s*\{")


def without_class(code: str, name: str) -> str:
    m = re.search(rf"(?:public\s+)?(?:final\s+)?class\s+{re.escape(name)}\b[^{{]*\{{", code)
    if m is None:
        return code
    end = matching(code, m.end() - 1)
    return code if end < 0 else code[: m.start()] + code[end + 1 :]


def continuation(problem: Problem, language: Language, code: str) -> str | None:
    """What follows the prompt, from a block that defines the asked function whole: its body (the prompt
    ends with its opening brace), then the rest of the block that belongs to the program (helpers, the
    class's other members), without a ``main`` or a test class. None when the block does not define it."""
    found = definition(code, opened_function(problem.prompt) or problem.entry_point, language.definer)
    if found is None:
        return None
    start, brace, end = found
    body = code[brace + 1 : end + 1]
    if language.name == "java":
        klass = re.search(r"class\s+Solution\b[^{]*\{", code)
        if klass is not None and klass.end() - 1 < brace and (close := matching(code, klass.end() - 1)) > end:
            members = code[klass.end() : start] + code[end + 1 : close]
            outside = without_class(code[: klass.start()] + code[close + 1 :], "Main")
            members = without_definition(members, "main")
            return f"{body}\n{members.strip(chr(10))}\n}}\n{outside.strip()}\n"
        rest = without_definition(code[:start] + code[end + 1 :], "main")
        return f"{body}\n{rest.strip(chr(10))}\n}}\n"
    rest = without_definition(code[:start] + code[end + 1 :], "main", language.definer)
    if language.name == "go":  # the program's files have their package clause
        rest = _GO_PACKAGE.sub("", rest)
    if language.name == "rust":  # the test brings its own ``mod tests``; a second one is an error
        while (m := _RUST_TEST_MODULE.search(rest)) and (close := matching(rest, m.end() - 1)) > 0:
            rest = rest[: m.start()] + rest[close + 1 :]
    if language.name == "js":  # a top-level console.log of an example would fail the quiet check
        rest = "\n".join(line for line in rest.split("\n") if not line.startswith("console."))
    return f"{body}\n{rest.strip()}\n" if rest.strip() else body + "\n"


def function_end(code: str) -> int | None:
    """The index after the ``}`` that closes the function the prompt opened (the first point with more
    ``}`` than ``{``), or None when the continuation never closes it."""
    depth = 0
    for i in code_chars(code):
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        if depth < 0:
            return i + 1
    return None


def closes_function(code: str) -> bool:
    """Whether a continuation closes the function the prompt opened: an answer cut at the token limit
    before that is truncated."""
    return function_end(code) is not None


def check_toolchains(dataset: Dataset, sandbox: str, image: str | None = None) -> str | None:
    """Before anything is served or run: every language the dataset's problems use is one we run, and can
    be built where the programs run (one message naming what is missing and what installs it). Returns the
    docker sandbox's image: for a language with tools, the toolchain image unless another was named, whose
    manifest then says where programs find the tools and shared builds."""
    shared_builds.use_manifest(None)
    languages = {language for p in dataset if (language := language_of(p)) is not None}
    tooled = {language for language in languages if language.tools}
    if sandbox == "docker":
        if tooled:
            image = image if image and image != DEFAULT_SANDBOX_IMAGE else DEFAULT_TOOLCHAIN_IMAGE
            shared_builds.use_manifest(image_toolchains(image, tooled, dataset.name))
        return image
    for language in sorted(languages, key=lambda lang: lang.name):
        language.require_tools(dataset.name)
        if language.prebuild is not None:  # once per machine (seconds), before any program waits on it
            language.prebuild()
    return image


def image_toolchains(image: str, languages: set[Language], dataset: str) -> dict[str, Any]:
    """The manifest of a toolchain image (:data:`shared_builds.MANIFEST`), which must cover ``languages``."""
    from .sandbox.docker_sandbox import read_file

    how = (
        f"build {DEFAULT_TOOLCHAIN_IMAGE} (`bash .ci/toolchain-image` in a checkout of pytest-humaneval), or "
        "pass --humaneval-sandbox-image=NAME of an image made the same way"
    )
    try:
        raw = read_file(image, shared_builds.MANIFEST)
    except HumanEvalError as e:
        raise HumanEvalError(f"dataset {dataset!r} needs a toolchain image: {e}: {how}") from None
    manifest = None
    if raw is not None:
        try:
            manifest = json.loads(raw)
        except ValueError:
            manifest = None
    if not isinstance(manifest, dict):
        raise HumanEvalError(
            f"image {image} has no readable toolchain manifest ({shared_builds.MANIFEST}), so it cannot "
            f"build the programs of dataset {dataset!r}: {how}"
        )
    missing = sorted(lang.title for lang in languages if lang.name not in manifest.get("languages", ()))
    if missing:
        raise HumanEvalError(
            f"image {image} has no {', '.join(missing)} toolchain for dataset {dataset!r}: {how}"
        )
    return manifest

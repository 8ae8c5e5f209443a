"""HumanEval-X in C++, JavaScript and Java: the official construction, the real toolchains, the sandbox.

Canonical solutions pass through the plugin (the known dataset defects as xfail); wrong, forged and hostile
programs in each language come back with the verdict they earn, and leave nothing on the host.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from docker_support import TOOLCHAIN_IMAGE, ensure_toolchain_image, require_docker
from hostile import leftovers, unique_mark
from venv_support import unavailable

from pytest_humaneval import shared_builds
from pytest_humaneval.api import evaluate
from pytest_humaneval.completions import Sample
from pytest_humaneval.datasets import Dataset, Problem
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.evaluation import conclude, prepare
from pytest_humaneval.generation.extract import extract
from pytest_humaneval.languages import (
    LANGUAGES,
    check_toolchains,
    entry_point_of,
    image_toolchains,
    opened_function,
)
from pytest_humaneval.sandbox import Limits, Sandbox, make_sandbox
from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox
from pytest_humaneval.verdict import Result

LANGS = ("cpp", "js", "java", "go", "rust")

#: Bodies for problem 0 (has_close_elements) of each language: what follows the prompt.
CASES: dict[str, dict[str, str]] = {
    "cpp": {
        "wrong": "    return false;\n}\n",
        "compile_error": "    return false\n}\n",
        "exit_early": "    exit(0);\n}\n",
        "loop": "    volatile int x = 0;\n    while (true) { x++; }\n}\n",
        "segfault": "    int *p = 0;\n    *p = 1;\n    return true;\n}\n",
        "fork_bomb": (
            "#include <unistd.h>\n"
            '    while (true) { if (fork() == 0) { execl("/bin/sleep", "sleep", "MARK", (char *)0); _exit(0); } }\n'
            "}\n"
        ),
        "writes_outside": '    FILE *f = fopen("OUTSIDE", "w");\n    if (f) { fputs("x", f); fclose(f); }\n'
        "    return false;\n}\n",
        "network": (
            "#include <sys/socket.h>\n#include <netinet/in.h>\n#include <arpa/inet.h>\n"
            "    int s = socket(AF_INET, SOCK_STREAM, 0);\n    sockaddr_in a{};\n    a.sin_family = AF_INET;\n"
            '    a.sin_port = htons(PORT);\n    a.sin_addr.s_addr = inet_addr("127.0.0.1");\n'
            "    connect(s, (sockaddr *)&a, sizeof a);\n    return false;\n}\n"
        ),
    },
    "js": {
        "wrong": "  return false;\n}\n",
        "compile_error": "  return false;;; }}}\n",
        "exit_early": "  process.exit(0);\n}\n",
        "loop": "  while (true) {}\n}\n",
        "fork_bomb": "  const cp = require('child_process');\n"
        "  for (;;) { try { cp.spawn('sleep', ['MARK']); } catch (e) {} }\n}\n",
        "writes_outside": "  try { require('fs').writeFileSync('OUTSIDE', 'x'); } catch (e) {}\n  return false;\n}\n",
        "network": "  require('net').connect(PORT, '127.0.0.1').on('error', () => {});\n  return false;\n}\n",
    },
    "java": {
        "wrong": "        return false;\n    }\n}\n",
        "compile_error": "        return false\n    }\n}\n",
        "exit_early": "        System.exit(0);\n        return true;\n    }\n}\n",
        "loop": "        while (true) {}\n    }\n}\n",
        "fork_bomb": '        while (true) { try { new ProcessBuilder("sleep", "MARK").start(); } catch (Exception e) {} }\n'
        "    }\n}\n",
        "writes_outside": '        try { java.nio.file.Files.writeString(java.nio.file.Path.of("OUTSIDE"), "x"); }\n'
        "        catch (Exception e) {}\n        return false;\n    }\n}\n",
        "network": '        try { new java.net.Socket("127.0.0.1", PORT).close(); } catch (Exception e) {}\n'
        "        return false;\n    }\n}\n",
    },
    "go": {
        "wrong": "    return false\n}\n",
        "compile_error": "    return false +\n}\n",
        # syscall.Exit, not os.Exit: the test binary turns os.Exit(0) in a test into a panic of its own
        "exit_early": 'import "syscall"\n    syscall.Exit(0)\n    return true\n}\n',
        "loop": "    for {\n    }\n}\n",
        "fork_bomb": 'import "os/exec"\n    for {\n        exec.Command("sleep", "MARK").Start()\n    }\n}\n',
        "writes_outside": 'import "os"\n    os.WriteFile("OUTSIDE", []byte("x"), 0o644)\n    return false\n}\n',
        "network": 'import "net"\n    if c, err := net.Dial("tcp", "127.0.0.1:PORT"); err == nil {\n'
        "        c.Close()\n    }\n    return false\n}\n",
    },
    "rust": {
        "wrong": "    return false;\n}\n",
        "compile_error": "    return false +;\n}\n",
        "exit_early": "    std::process::exit(0);\n}\n",
        "loop": "    loop {}\n}\n",
        "segfault": "    unsafe { std::ptr::write_volatile(0 as *mut i32, 1); }\n    true\n}\n",
        "fork_bomb": '    loop { let _ = std::process::Command::new("sleep").arg("MARK").spawn(); }\n}\n',
        "writes_outside": '    let _ = std::fs::write("OUTSIDE", "x");\n    false\n}\n',
        "network": '    let _ = std::net::TcpStream::connect("127.0.0.1:PORT");\n    false\n}\n',
    },
}

#: The verdict each case earns (every one in every language: not passed, and never the harness's failure).
EXPECTED = {
    "wrong": "failed",
    "compile_error": "syntax_error",
    "exit_early": "failed",
    "loop": "timeout",
    "segfault": "crashed",
    "fork_bomb": "timeout",
    "writes_outside": "failed",
    "network": "failed",
}


def need(language: str) -> None:
    missing = LANGUAGES[language].missing_tools()
    if missing:
        unavailable(
            f"no {LANGUAGES[language].title} toolchain here ({', '.join(missing)}): bash .ci/toolchains"
        )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(Limits(), concurrency=4)
    sb.start()
    yield sb
    sb.close()


@functools.cache
def dataset_of(language: str) -> Dataset:
    return load_dataset(f"humaneval-x-{language}")


def first_problem(language: str) -> Problem:
    """Problem 0 (has_close_elements), which every case here completes."""
    return next(iter(dataset_of(language)))


@pytest.fixture(scope="module", params=["subprocess", pytest.param("docker", marks=pytest.mark.docker)])
def box(request: pytest.FixtureRequest, sandbox: SubprocessSandbox) -> Iterator[Sandbox]:
    """Each sandbox: the subprocess one, and the docker one in the toolchain image."""
    if request.param == "subprocess":
        yield sandbox
        return
    require_docker()
    sb = make_sandbox("docker", Limits(), image=ensure_toolchain_image(), concurrency=2)
    sb.start()
    yield sb
    sb.close()


@functools.cache
def image_manifest(image: str) -> dict:
    return image_toolchains(image, {LANGUAGES[lang] for lang in LANGS}, "humaneval-x")


def verdict(sb: Sandbox, language: str, completion: str) -> Result:
    """The verdict of ``completion`` to problem 0, built against the toolchains of the sandbox's machine."""
    if sb.kind == "docker":
        shared_builds.use_manifest(image_manifest(str(getattr(sb, "image", TOOLCHAIN_IMAGE))))
    else:
        shared_builds.use_manifest(None)
        need(language)
    dataset, problem = dataset_of(language), first_problem(language)
    sample = Sample(problem.task_id, 0, completion)
    job = prepare(dataset, problem, sample, 3.0)
    shared_builds.use_manifest(None)
    assert not isinstance(job, Result)
    return conclude(dataset, problem, sample, sb.run(job))


@pytest.mark.parametrize("language", LANGS)
def test_the_canonical_solution_passes_and_the_verdicts_of_wrong_ones(box: Sandbox, language: str) -> None:
    assert verdict(box, language, first_problem(language).canonical_solution).status == "passed"
    wrong = verdict(box, language, CASES[language]["wrong"])
    assert wrong.status == "failed" and wrong.reason, wrong
    broken = verdict(box, language, CASES[language]["compile_error"])
    assert broken.status == "syntax_error", broken
    assert "rror" in broken.reason or "expected operand" in broken.reason, broken  # go: file:line: what


@pytest.mark.parametrize("language", LANGS)
def test_a_program_that_ends_its_process_early_does_not_pass(box: Sandbox, language: str) -> None:
    """exit(0) in the function: the official harness (exit status 0) passes it; here its test never ended."""
    result = verdict(box, language, CASES[language]["exit_early"])
    assert (result.status, result.reason) == (
        "failed",
        "the program exited (status 0) before its test's main ran to the end",
    )


#: Forgeries that look for the nonce the test's end writes (in the binary, the program's source, the class
#: files), write it where the driver looks, and end the process before the test can fail.
STEALS_THE_NONCE = {
    "cpp": (
        "#include <fstream>\n#include <sstream>\n"
        '    for (const char *path : {"/proc/self/exe", "main.cpp"}) {\n'
        "        std::ifstream f(path, std::ios::binary);\n"
        "        std::stringstream ss;\n        ss << f.rdbuf();\n        std::string b = ss.str();\n"
        "        for (size_t i = 0; i + 32 <= b.size(); i++) {\n"
        "            size_t k = 0;\n"
        '            while (k < 32 && strchr("0123456789abcdef", b[i + k]) && b[i + k]) k++;\n'
        "            if (k == 32) {\n"
        '                FILE *d = fopen(".humaneval-done", "w");\n'
        "                fwrite(b.data() + i, 1, 32, d);\n                fclose(d);\n                exit(0);\n"
        "            }\n        }\n    }\n    exit(0);\n}\n"
    ),
    "js": (
        "  const fs = require('fs');\n"
        "  for (const path of ['/proc/self/fd/0', 'main.js']) {\n"
        "    let text = '';\n    try { text = fs.readFileSync(path, 'latin1'); } catch (e) {}\n"
        "    const m = text.match(/'([0-9a-f]{32})'/);\n"
        "    if (m) { fs.writeFileSync('.humaneval-done', m[1]); process.exit(0); }\n"
        "  }\n  process.exit(0);\n}\n"
    ),
    "java": (
        "        try {\n"
        '            for (String path : new String[] {"HumanEvalMain.class", "HumanEvalMain.java"}) {\n'
        "                java.nio.file.Path p = java.nio.file.Path.of(path);\n"
        "                if (!java.nio.file.Files.exists(p)) continue;\n"
        '                String text = new String(java.nio.file.Files.readAllBytes(p), "ISO-8859-1");\n'
        '                java.util.regex.Matcher m = java.util.regex.Pattern.compile("[0-9a-f]{32}").matcher(text);\n'
        "                if (m.find()) {\n"
        '                    java.nio.file.Files.writeString(java.nio.file.Path.of(".humaneval-done"), m.group());\n'
        "                    System.exit(0);\n"
        "                }\n            }\n        } catch (Exception e) {}\n"
        "        System.exit(0);\n        return true;\n    }\n}\n"
    ),
    "go": (
        'import (\n    "os"\n    "regexp"\n    "syscall"\n)\n'
        '    for _, path := range []string{"/proc/self/fd/0", "/proc/self/exe", "humaneval_main_test.go"} {\n'
        "        data, _ := os.ReadFile(path)\n"
        '        if m := regexp.MustCompile("[0-9a-f]{32}").Find(data); m != nil {\n'
        '            os.WriteFile("../.humaneval-done", m, 0o644)\n'
        "            syscall.Exit(0)\n"
        "        }\n    }\n    syscall.Exit(0)\n    return true\n}\n"
    ),
    "rust": (
        "    use std::io::Read;\n"
        "    let mut text = String::new();\n"
        "    let _ = std::io::stdin().read_to_string(&mut text);\n"
        '    for path in ["/proc/self/exe", "main.rs"] {\n'
        "        text.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()));\n"
        "    }\n"
        '    let hex = regex::Regex::new("[0-9a-f]{32}").unwrap();\n'
        "    if let Some(m) = hex.find(&text) {\n"
        '        let _ = std::fs::write(".humaneval-done", m.as_str());\n'
        "    }\n"
        "    std::process::exit(0);\n}\n"
    ),
}


@pytest.mark.parametrize("language", LANGS)
def test_a_program_that_steals_the_nonce_does_not_pass(box: Sandbox, language: str) -> None:
    """The nonce is in no file the program can read: stdin for the C++, Java and Go wrappers and Rust's
    first test (read before the test calls the program), a drained pipe for JavaScript's source."""
    result = verdict(box, language, STEALS_THE_NONCE[language])
    assert (result.status, result.reason) == (
        "failed",
        "the program exited (status 0) before its test's main ran to the end",
    ), result


@pytest.mark.parametrize(
    "language,case",
    [
        (lang, case)
        for lang in LANGS
        for case in ("loop", "fork_bomb", "writes_outside", "network", "segfault")
        if case in CASES[lang]
    ],
)
def test_hostile_programs_in_each_language(
    box: Sandbox, listener: socket.socket, tmp_path: Path, language: str, case: str
) -> None:
    mark = unique_mark()
    outside = tmp_path / "outside.txt"
    body = (
        CASES[language][case]
        .replace("MARK", mark)
        .replace("OUTSIDE", str(outside))
        .replace("PORT", str(listener.getsockname()[1]))
    )
    started = time.monotonic()
    result = verdict(box, language, body)
    if (language, case) == ("go", "fork_bomb"):  # Go's runtime dies when it cannot make a thread
        assert result.status in ("timeout", "failed", "crashed"), result
    else:
        assert result.status == EXPECTED[case], result
    if result.status == "timeout":  # stopped on its CPU time, not the build's allowance on top
        assert result.reason in ("the program used up its 3 s of CPU time", "timed out after 3 s"), result
        assert time.monotonic() - started < box.longest_run(3.0 + LANGUAGES[language].build_s)
    assert leftovers(mark) == [], "a process the program started is still running"
    assert not outside.exists(), "the program wrote outside its directory"
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing connected from inside the sandbox
    assert verdict(box, language, first_problem(language).canonical_solution).passed


#: Programs that try to change what every later program builds against (the shared Go module and build
#: cache, the Rust crates): every file under the shared builds overwritten, and a file planted beside them.
POISONS_THE_SHARED_BUILDS = {
    "go": (
        'import (\n    "os"\n    "path/filepath"\n)\n'
        '    filepath.Walk("ROOT", func(p string, info os.FileInfo, err error) error {\n'
        "        if err == nil && !info.IsDir() {\n"
        '            os.WriteFile(p, []byte("x"), 0o644)\n'
        "        }\n        return nil\n    })\n"
        '    os.WriteFile("ROOT/planted", []byte("x"), 0o644)\n'
        "    return false\n}\n"
    ),
    "rust": (
        "    fn walk(p: &std::path::Path) {\n"
        "        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {\n"
        "            let q = e.path();\n"
        '            if q.is_dir() { walk(&q) } else { let _ = std::fs::write(&q, "x"); }\n'
        "        }\n    }\n"
        '    walk(std::path::Path::new("ROOT"));\n'
        '    let _ = std::fs::write("ROOT/planted", "x");\n'
        "    false\n}\n"
    ),
}


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("language", ["go", "rust"])
def test_a_program_cannot_change_the_shared_builds(sandbox: SubprocessSandbox, language: str) -> None:
    """The shared builds are bound read-only into every program's file system: a program that overwrites
    them (to make a later program's test library or crate pass anything) changes nothing."""
    need(language)
    assert verdict(sandbox, language, first_problem(language).canonical_solution).passed  # built, in view
    root = shared_builds.root()
    before = tree_digest(root)
    result = verdict(sandbox, language, POISONS_THE_SHARED_BUILDS[language].replace("ROOT", str(root)))
    assert result.status == "failed", result
    assert tree_digest(root) == before and not (root / "planted").exists()
    assert verdict(sandbox, language, first_problem(language).canonical_solution).passed


# -- extraction: the function the prompt asks for, from a chat answer ----------------------------------

CPP_ANSWER = """Here it is:

```cpp
#include <vector>
#include <map>
using namespace std;

bool has_close_elements(vector<float> numbers, float threshold) {
    map<int, int> seen;  // a brace in a comment: {
    for (int i = 0; i < (int)numbers.size(); i++)
        for (int j = i + 1; j < (int)numbers.size(); j++)
            if (abs(numbers[i] - numbers[j]) < threshold) return true;
    return false;
}

int main() {
    printf("%d\\n", has_close_elements({1.0, 2.0}, 0.5));
}
```
"""

JAVA_ANSWER = """```java
import java.util.*;

class Solution {
    private boolean close(double a, double b, double t) { return Math.abs(a - b) < t; }

    public boolean hasCloseElements(List<Double> numbers, double threshold) {
        for (int i = 0; i < numbers.size(); i++)
            for (int j = i + 1; j < numbers.size(); j++)
                if (close(numbers.get(i), numbers.get(j), threshold)) return true;
        return false;
    }
}

public class Main {
    public static void main(String[] args) { System.out.println(new Solution().hasCloseElements(List.of(1.0), 0.5)); }
}
```"""

JS_ANSWER = """```javascript
const near = (a, b, t) => Math.abs(a - b) < t;

const hasCloseElements = (numbers, threshold) => {
  for (let i = 0; i < numbers.length; i++)
    for (let j = i + 1; j < numbers.length; j++)
      if (near(numbers[i], numbers[j], threshold)) return true;
  return false;
};

console.log(hasCloseElements([1.0, 2.0], 0.5));
```"""


CPP_HELPER_FIRST = """```cpp
#include <vector>
#include <cmath>
using namespace std;

template <typename T>
T gap(T a, T b) { return a > b ? a - b : b - a; }

static bool near(float a, float b, float t) {
    return gap(a, b) < t;
}

bool has_close_elements(vector<float> numbers, float threshold) {
    for (size_t i = 0; i < numbers.size(); i++)
        for (size_t j = i + 1; j < numbers.size(); j++)
            if (near(numbers[i], numbers[j], threshold)) return true;
    return false;
}
```"""


GO_ANSWER = """```go
package main

import (
    "fmt"
    "math"
)

func near(a, b, t float64) bool { return math.Abs(a-b) < t }

func HasCloseElements(numbers []float64, threshold float64) bool {
    for i := range numbers {
        for j := i + 1; j < len(numbers); j++ {
            if near(numbers[i], numbers[j], threshold) {
                return true
            }
        }
    }
    return false
}

func main() {
    if HasCloseElements([]float64{1, 2}, 0.5) {
        fmt.Println("close")
    }
}
```"""

RUST_ANSWER = """```rust
use std::collections::HashMap;

fn near(a: f32, b: f32, t: f32) -> bool {
    (a - b).abs() < t
}

fn has_close_elements(numbers: Vec<f32>, threshold: f32) -> bool {
    let _seen: HashMap<i32, i32> = HashMap::new();
    for i in 0..numbers.len() {
        for j in i + 1..numbers.len() {
            if near(numbers[i], numbers[j], threshold) {
                return true;
            }
        }
    }
    false
}

fn main() {
    println!("{}", has_close_elements(vec![1.0, 2.0], 0.5));
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn it_works() {
        assert!(has_close_elements(vec![1.0, 1.1], 0.5));
    }
}
```"""

ANSWERS = [
    ("cpp", CPP_ANSWER),
    ("cpp", CPP_HELPER_FIRST),  # helpers defined before the function: declared before it
    ("java", JAVA_ANSWER),
    ("js", JS_ANSWER),
    ("go", GO_ANSWER),
    ("rust", RUST_ANSWER),
]


@pytest.mark.parametrize("language,answer", ANSWERS)
def test_a_whole_function_from_a_chat_answer_passes_without_its_main(
    sandbox: SubprocessSandbox, language: str, answer: str
) -> None:
    """The answer's own includes or imports, helpers and class members stay; its main, its example calls and
    its tests go (Rust's second ``mod tests``, and its ``use`` of a name the prompt brings in, would not
    build)."""
    need(language)
    problem = first_problem(language)
    extraction = extract(problem, answer)
    assert extraction.status == "ok", extraction
    assert "main" not in extraction.completion and "console.log" not in extraction.completion
    result = verdict(sandbox, language, extraction.completion)
    assert result.status == "passed", (result, extraction.completion)


def test_an_answer_with_no_code_in_the_language_is_no_code() -> None:
    problem = next(iter(load_dataset("humaneval-x-cpp")))
    assert extract(problem, "").status == "no_code"
    cut = extract(
        problem,
        "```cpp\nbool has_close_elements(vector<float> n, float t) {\n    for (",
        finish_reason="length",
    )
    assert cut.status == "truncated"


def test_the_entry_point_is_the_function_the_prompt_opens() -> None:
    assert (
        entry_point_of("/* doc */\nconst hasCloseElements = (numbers, threshold) => {\n")
        == "hasCloseElements"
    )
    assert entry_point_of("#include<vector>\nbool has_close_elements(vector<float> n, float t){\n") == (
        "has_close_elements"
    )
    assert all(p.entry_point in p.test for lang in LANGS for p in dataset_of(lang))
    # Rust/10's prompt opens the helper is_palindrome_10; the test calls make_palindrome
    rust_10 = next(p for p in dataset_of("rust") if p.task_id == "Rust/10")
    assert (rust_10.entry_point, opened_function(rust_10.prompt)) == ("make_palindrome", "is_palindrome_10")
    # Rust generics and lifetimes between the name and its parameters
    assert entry_point_of(
        "fn compare_one<'a>(a: &'a dyn Any, b: &'a dyn Any) -> RtnType<String, f64, i32>{\n"
    ) == ("compare_one")


# -- set-up: one message for a missing toolchain --------------------------------------------------------


def test_a_missing_toolchain_is_one_message_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HumanEvalError) as e:
        check_toolchains(dataset_of("java"), "subprocess")
    assert str(e.value) == (
        "dataset 'humaneval-x-java' needs the Java toolchain, and this machine lacks javac (default-jdk-headless), "
        "java (default-jdk-headless): install it (`bash .ci/toolchains` in a checkout of pytest-humaneval does it "
        "on Debian)"
    )
    assert check_toolchains(load_dataset("humaneval-4"), "docker") is None  # Python: nothing to check
    cobol = Dataset("mine", Path("mine.jsonl"), {"X/0": Problem("X/0", "F.\n", "", "F", "", "cobol")})
    with pytest.raises(HumanEvalError, match="X/0: language 'cobol' is not one pytest-humaneval runs"):
        check_toolchains(cobol, "subprocess")


def test_the_docker_sandbox_builds_in_a_toolchain_image_named_by_its_manifest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In the docker sandbox a compiled language's programs build in the toolchain image (by default), against
    the tools and shared builds its manifest names, never the host's; an image without a manifest, or
    without the language, or no image at all is one message saying how to build one."""
    from pytest_humaneval.sandbox import docker_sandbox

    manifest = {
        "languages": ["cpp", "js", "go", "rust"],
        "go": "/image/go",
        "go_module": "/image/builds/go-1",
        "rustc": "/image/rustc",
        "rust_crates": {"": "/image/builds/rust-1/deps", "rand": "/image/builds/rust-1/deps/librand.rlib"},
        "node_path": "/image/node_modules",
    }
    asked = []

    def read_file(image: str, path: str) -> bytes | None:
        asked.append((image, path))
        good = json.dumps(manifest).encode()
        images = {"toolchains:1": good, "pytest-humaneval-toolchains:latest": good, "bare:1": None}
        return images[image] if image in images else b"{not json"

    monkeypatch.setattr(docker_sandbox, "read_file", read_file)
    monkeypatch.setenv("PATH", "/nonexistent")  # the host's tools play no part
    try:
        assert check_toolchains(dataset_of("go"), "docker") == "pytest-humaneval-toolchains:latest"
        assert check_toolchains(dataset_of("go"), "docker", "toolchains:1") == "toolchains:1"
        assert asked[-1] == ("toolchains:1", "/opt/pytest-humaneval/toolchains.json")
        problem = first_problem("go")
        steps = LANGUAGES["go"].construct(problem, "return 1\n}\n", "n")[1]
        setup = cast("list[tuple[str, str, str]]", steps[0]["setup"])  # (kind, source, name) per entry
        build = cast("list[str]", steps[1]["argv"])
        assert setup[0][1] == "/image/builds/go-1/go.mod" and build[0] == "/image/go"
        argv = cast("list[str]", LANGUAGES["rust"].construct(first_problem("rust"), "}\n", "n")[1][0]["argv"])
        assert argv[0] == "/image/rustc" and "rand=/image/builds/rust-1/deps/librand.rlib" in argv
        js = LANGUAGES["js"].construct(first_problem("js"), "}\n", "n")[1][0]
        assert js["env"] == {"NODE_PATH": "/image/node_modules"}
        with pytest.raises(HumanEvalError, match="image toolchains:1 has no Java toolchain for dataset"):
            check_toolchains(dataset_of("java"), "docker", "toolchains:1")
        with pytest.raises(HumanEvalError, match=r"image bare:1 has no readable toolchain manifest .*"
                           r"\(`bash \.ci/toolchain-image` in a checkout"):  # fmt: skip
            check_toolchains(dataset_of("cpp"), "docker", "bare:1")
        with pytest.raises(HumanEvalError, match="image junk:1 has no readable toolchain manifest"):
            check_toolchains(dataset_of("cpp"), "docker", "junk:1")
        # the subprocess sandbox is the host's again
        check_toolchains(load_dataset("humaneval-4"), "subprocess")
        assert shared_builds.go() != "/image/go"
    finally:
        shared_builds.use_manifest(None)


def test_missing_crates_are_one_message_naming_the_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTEST_HUMANEVAL_BUILD_CACHE", str(tmp_path / "builds"))
    monkeypatch.setattr(shared_builds, "CRATE_REGISTRY", str(tmp_path / "registry"))
    shared_builds._host_rust_crates.cache_clear()
    try:
        with pytest.raises(HumanEvalError) as e:
            shared_builds.rust_crates()
    finally:
        shared_builds._host_rust_crates.cache_clear()
    assert str(e.value).endswith(
        "and it lacks librust-rand-dev, librust-regex-dev, librust-md5-dev: install them (`bash "
        ".ci/toolchains` in a checkout of pytest-humaneval does it on Debian)"
    )
    assert [p.name for p in (tmp_path / "builds").iterdir()] == []  # nothing half-built left behind


def test_the_plugin_stops_before_anything_runs_without_the_toolchain(tmp_path: Path) -> None:
    env = dict(os.environ, PATH="/nonexistent")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--humaneval-debug",
            "--humaneval-dataset=humaneval-x-cpp",
            "--humaneval-completions=canonical",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "needs the C++ toolchain, and this machine lacks g++ (g++)" in proc.stderr


# -- the whole dataset through the plugin ---------------------------------------------------------------

EXPECTED_RUNS = {"cpp": (164, 0), "js": (162, 2), "java": (164, 0), "go": (163, 1), "rust": (163, 1)}


def canonical_run(pytester: pytest.Pytester, language: str, *args: str) -> pytest.RunResult:
    if "--humaneval-sandbox=docker" in args:
        args = (*args, f"--humaneval-sandbox-image={ensure_toolchain_image()}")
    else:
        need(language)
    dataset = f"--humaneval-dataset=humaneval-x-{language}"
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", dataset, "--humaneval-completions=canonical", *args
    )


@pytest.mark.parametrize("language", LANGS)
def test_debug_run_of_each_language(pytester: pytest.Pytester, language: str) -> None:
    canonical_run(pytester, language, "--humaneval-debug").assert_outcomes(passed=4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["subprocess", pytest.param("docker", marks=pytest.mark.docker)])
@pytest.mark.parametrize("language", LANGS)
def test_every_canonical_solution_through_the_plugin(
    pytester: pytest.Pytester, language: str, kind: str
) -> None:
    args = ("--humaneval", "--humaneval-report=report.json", f"--humaneval-sandbox={kind}")
    result = canonical_run(pytester, language, *args)
    passed, xfailed = EXPECTED_RUNS[language]
    # Go/95's test depends on Go's map order: its canonical solution passes most runs (a known defect)
    xpassed = result.parseoutcomes().get("xpassed", 0) if language == "go" else 0
    result.assert_outcomes(passed=passed, xfailed=xfailed - xpassed, xpassed=xpassed)
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["passed"] == passed + xpassed and report["total"] == 164


def test_a_plugged_in_benchmark_chooses_its_language(pytester: pytest.Pytester) -> None:
    need("cpp")
    pytester.makeconftest(
        """
from pytest_humaneval.datasets import Benchmark

TEST = "#include <cassert>\\nint main() {\\n    assert(inc(1) == 2);\\n    assert(inc(-1) == 0);\\n}\\n"


def load():
    return [{"task_id": "Mine/0", "prompt": "int inc(int x) {\\n", "entry_point": "inc", "language": "cpp",
             "canonical_solution": "    return x + 1;\\n}\\n", "test": TEST}]


def pytest_humaneval_datasets(config):
    return [Benchmark("mine-cpp", load, "one C++ problem")]
"""
    )
    pytester.makefile(".jsonl", answers='{"task_id": "Mine/0", "completion": "    return x + 2;\\n}\\n"}\n')
    canonical = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--humaneval",
        "--humaneval-dataset=mine-cpp",
        "--humaneval-completions=canonical",
    )
    canonical.assert_outcomes(passed=1)
    wrong = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--humaneval",
        "--humaneval-dataset=mine-cpp",
        "--humaneval-completions=answers.jsonl",
    )
    wrong.assert_outcomes(failed=1)
    wrong.stdout.fnmatch_lines(["*Assertion `inc(1) == 2' failed*"])


@pytest.mark.slow
@pytest.mark.parametrize("language", ["cpp", "java", "go", "rust"])
def test_64_programs_at_once_on_this_machine_still_pass_every_canonical_solution(
    language: str, tmp_path: Path
) -> None:
    """What a 64-core box runs by default, on 2 cores: the compilers' and JVMs' waits for a CPU are not the
    programs' time (69 of 164 correct Java programs timed out when the limit was wall-clock)."""
    need(language)
    report = evaluate("canonical", f"humaneval-x-{language}", timeout=3.0, workers=64, output=tmp_path)
    failing = {r["task_id"] for r in report["results"] if not r["passed"]}
    assert failing <= set(dataset_of(language).known_defects), failing  # Go/95 (map order), Rust/50
    assert Counter(r["status"] for r in report["results"])["passed"] >= 163


@pytest.mark.slow
def test_a_program_that_sleeps_is_stopped_by_the_wall_clock_bound(sandbox: SubprocessSandbox) -> None:
    need("js")
    started = time.monotonic()
    result = verdict(sandbox, "js", "  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);\n}\n")
    assert (result.status, result.reason) == ("timeout", "timed out after 30 s")
    assert time.monotonic() - started < 40


def test_humaneval_x_python_is_humaneval_with_its_own_tests(tmp_path: Path) -> None:
    """HumanEval-X's Python: HumanEval's prompts; its tests end by calling check themselves, which the
    loader takes off (the harness calls check with the candidate)."""
    ours, humaneval = list(load_dataset("humaneval-x-python")), list(load_dataset("humaneval"))
    assert [(p.prompt, p.entry_point) for p in ours] == [(p.prompt, p.entry_point) for p in humaneval]
    assert all(p.language == "python" and "\ncheck(" not in p.test for p in ours)
    report = evaluate(
        "canonical", "humaneval-x-python", timeout=3.0, workers=2, output=tmp_path / "canonical"
    )
    assert report["passed"] == 164
    wrong = [{"task_id": p.task_id, "completion": "    return None\n"} for p in ours]
    report = evaluate(wrong, "humaneval-x-python", timeout=3.0, workers=2, output=tmp_path / "wrong")
    assert report["passed"] == 0 and report["total"] == 164

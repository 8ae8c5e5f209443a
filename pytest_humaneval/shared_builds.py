"""What every program of a compiled language builds against, built once per machine and read-only to programs.

- **Go:** HumanEval-X's module (``go.mod``, ``go.sum`` and the vendored testify), and a Go build cache that
  holds testify and the standard packages the problems use, compiled with ``-trimpath`` (so an entry does not
  depend on the directory a program is built in). Programs build with it read-only (``GODEBUG=goindex=0``:
  go 1.19's package index would otherwise need to write there): 0.3 s a build instead of 2.3 s, and no
  program's build can change another's.
- **Rust:** rand 0.8, regex 1 and md5 0.7 from Debian's crate registry, built once with cargo; each program
  links them with ``rustc --extern``.

The harness builds them from trusted sources only (the bundled module, the system's registry), before any
program runs, in a directory the sandbox binds back read-only (:func:`root`). Each is keyed by the toolchain's
version and its inputs, and appears whole or not at all (built aside, then renamed).

The docker sandbox's toolchain image holds its own, built by this module inside the image
(``python3 -m pytest_humaneval.shared_builds --manifest PATH``), and a manifest of where they and the tools
are (:data:`MANIFEST`): a run in that sandbox builds against the image's (:func:`use_manifest`), never the
host's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .datasets.dataset import data_dir
from .errors import HumanEvalError
from .user_cache import cache_dir

#: HumanEval-X's Go module: go.mod, go.sum and vendor/ (testify and what it needs).
GO_MODULE_FILE = "humaneval_go_module.tar.gz"
#: Debian's crate registry, which replaces crates.io offline.
CRATE_REGISTRY = "/usr/share/cargo/registry"
#: The crates HumanEval-X's Rust declarations ``use``.
RUST_CRATES = {"rand": "0.8", "regex": "1", "md5": "0.7"}
#: What every Go step sees: the vendored module only, no network, no cgo (no C compiler in the build).
GO_ENV = {
    "GOFLAGS": "-mod=vendor -trimpath",
    "GOPROXY": "off",
    "GO111MODULE": "on",
    "CGO_ENABLED": "0",
    "GOENV": "off",
    "GODEBUG": "goindex=0",
}
#: Standard packages compiled into the shared cache beside testify's: what HumanEval-X's Go problems and
#: their answers use (a program that imports another compiles it itself, in its own build directory).
GO_WARM = (
    "bytes",
    "container/heap",
    "crypto/md5",
    "fmt",
    "math",
    "math/big",
    "math/bits",
    "math/rand",
    "regexp",
    "sort",
    "strconv",
    "strings",
    "time",
    "unicode",
)

#: Where a toolchain image says where its tools and shared builds are (JSON; see :func:`manifest`).
MANIFEST = "/opt/pytest-humaneval/toolchains.json"
#: The languages a toolchain image has (its manifest's ``languages``).
IMAGE_LANGUAGES = ("cpp", "js", "java", "go", "rust")
#: Where node's globally installed modules are (js-md5, for JavaScript/162).
NODE_MODULES = ("/usr/local/lib/node_modules", "/usr/lib/node_modules")

#: The manifest in use: programs run in a toolchain image, and build against what it holds (None: the host).
_IMAGE: dict[str, Any] | None = None

_WARM_TEST = """package main

import (
    _ "io"
    _ "os"
    "testing"
    "github.com/stretchr/testify/assert"
%s)

func TestWarm(t *testing.T) {
    assert.New(t).Equal(1, 1)
}
"""


def root() -> Path:
    """Where the shared builds live (the sandbox binds it back read-only under a hidden home)."""
    given = os.environ.get("PYTEST_HUMANEVAL_BUILD_CACHE")
    if given:
        return Path(given).expanduser()
    return cache_dir("shared-builds")


def use_manifest(manifest: dict[str, Any] | None) -> None:
    """Build against a toolchain image's tools and shared builds (its manifest), or the host's (None)."""
    global _IMAGE
    _IMAGE = manifest


def manifest() -> dict[str, Any]:
    """Where this machine's tools and shared builds are, building the shared builds first: what a toolchain
    image records at :data:`MANIFEST` when it is made."""
    return {
        "languages": list(IMAGE_LANGUAGES),
        "go": go(),
        "go_module": go_module(),
        "rustc": rustc(),
        "rust_crates": rust_crates(),
        "node_path": node_path(),
    }


def rustc() -> str:
    """Debian's rustc when there is one: the crates are built from Debian's registry, and a rustup rustc
    earlier on PATH (of another version) could not link them."""
    if _IMAGE is not None:
        return str(_IMAGE["rustc"])
    return "/usr/bin/rustc" if os.access("/usr/bin/rustc", os.X_OK) else shutil.which("rustc") or "rustc"


def cargo() -> str:
    return "/usr/bin/cargo" if os.access("/usr/bin/cargo", os.X_OK) else shutil.which("cargo") or "cargo"


def go() -> str:
    if _IMAGE is not None:
        return str(_IMAGE["go"])
    return shutil.which("go") or "/usr/bin/go"


def node_path() -> str:
    """``NODE_PATH``: where modules installed globally are."""
    if _IMAGE is not None:
        return str(_IMAGE["node_path"])
    return _host_node_path()


@functools.cache
def _host_node_path() -> str:
    return ":".join(d for d in NODE_MODULES if os.path.isdir(d))


def go_module() -> str:
    """The directory with the Go module (``go.mod``, ``go.sum``, ``vendor/``) and ``gocache/``."""
    if _IMAGE is not None:
        return str(_IMAGE["go_module"])
    return _host_go_module()


def rust_crates() -> dict[str, str]:
    """``--extern`` name -> rlib path, and ``-L dependency=`` (key ``""``), of the prebuilt crates."""
    if _IMAGE is not None:
        return {str(k): str(v) for k, v in _IMAGE["rust_crates"].items()}
    return _host_rust_crates()


@functools.cache
def _host_go_module() -> str:
    module = data_dir("datasets") / GO_MODULE_FILE
    key = _key([go(), "version"], module.read_bytes() + json.dumps([GO_ENV, GO_WARM]).encode())
    return str(_built(f"go-{key}", lambda tmp: _build_go(tmp, module)))


@functools.cache
def _host_rust_crates() -> dict[str, str]:
    key = _key([rustc(), "-vV"], json.dumps(RUST_CRATES).encode())
    where = _built(f"rust-{key}", _build_rust)
    found = json.loads((where / "externs.json").read_text())
    return {name: str(where / path) for name, path in found.items()}


def _key(version_argv: list[str], inputs: bytes) -> str:
    try:
        version = subprocess.run(version_argv, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HumanEvalError(f"could not run {version_argv[0]}: {e}") from None
    return hashlib.sha256(version.encode() + inputs).hexdigest()[:16]


def _built(name: str, build: Callable[[Path], None]) -> Path:
    """``root()/name``, built by ``build`` into a fresh directory first when it is not there yet."""
    target = root() / name
    if (target / "READY").is_file():
        return target
    root().mkdir(parents=True, exist_ok=True)
    os.chmod(root(), 0o755)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root()))
    try:
        build(tmp)
        for path in (
            tmp,
            *tmp.rglob("*"),
        ):  # programs run as other uids: everything readable, nothing writable
            if not path.is_symlink():
                os.chmod(path, 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        (tmp / "READY").write_text("")
        try:
            tmp.rename(target)
        except OSError:  # another process finished it first
            if not (target / "READY").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    except OSError as e:
        raise HumanEvalError(f"could not build {what}: {argv[0]}: {e}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise HumanEvalError(f"could not build {what} ({' '.join(argv[:3])} ...):\n{tail}")


def _build_go(tmp: Path, module: Path) -> None:
    with tarfile.open(module) as tar:  # ours, bundled; the data filter where this Python has it
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:
            tar.extractall(tmp)
    warm = tmp / "warm"
    warm.mkdir()
    for name in ("go.mod", "go.sum"):
        shutil.copy(tmp / name, warm / name)
    (warm / "vendor").symlink_to(tmp / "vendor")
    (warm / "warm_test.go").write_text(_WARM_TEST % "".join(f'    _ "{pkg}"\n' for pkg in GO_WARM))
    env = {**GO_ENV, "GOCACHE": str(tmp / "gocache"), "GOPATH": str(tmp / "gopath"), "HOME": str(tmp)}
    _run(
        [go(), "test", "-c", "-trimpath", "-o", "warm.test", "."],
        warm,
        env,
        "the Go test libraries (testify)",
    )
    shutil.rmtree(warm)
    shutil.rmtree(tmp / "gopath", ignore_errors=True)


def _build_rust(tmp: Path) -> None:
    missing = [
        f"librust-{name}-dev"
        for name, version in RUST_CRATES.items()
        if not any(Path(CRATE_REGISTRY).glob(f"{name}-{version}*"))
    ]
    if missing:
        raise HumanEvalError(
            f"the Rust programs need the crates {', '.join(RUST_CRATES)} from Debian's registry "
            f"({CRATE_REGISTRY}), and it lacks {', '.join(missing)}: install them (`bash .ci/toolchains` in "
            "a checkout of pytest-humaneval does it on Debian)"
        )
    home, crate = tmp / "cargo-home", tmp / "crate"
    home.mkdir()
    (crate / "src").mkdir(parents=True)
    (home / "config.toml").write_text(
        f'[source.crates-io]\nreplace-with = "system"\n[source.system]\ndirectory = "{CRATE_REGISTRY}"\n'
        "[net]\noffline = true\n"
    )
    deps = "".join(f'{name} = "{version}"\n' for name, version in RUST_CRATES.items())
    (crate / "Cargo.toml").write_text(
        f'[package]\nname = "humaneval_deps"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}'
    )
    (crate / "src" / "lib.rs").write_text("")
    env = {"CARGO_HOME": str(home), "RUSTC": rustc(), "CARGO_TARGET_DIR": str(tmp / "target")}
    _run([cargo(), "build", "--offline", "--quiet"], crate, env, "the Rust crates (rand, regex, md5)")
    built = tmp / "target" / "debug" / "deps"
    (tmp / "deps").mkdir()
    for lib in built.glob("lib*.r*"):
        if lib.suffix in (".rlib", ".rmeta") and not lib.name.startswith("libhumaneval_deps"):
            shutil.copy(lib, tmp / "deps" / lib.name)
    externs = {"": "deps"}
    for name in RUST_CRATES:
        (rlib,) = (tmp / "deps").glob(f"lib{name}-*.rlib")
        externs[name] = f"deps/{rlib.name}"
    (tmp / "externs.json").write_text(json.dumps(externs))
    for path in (home, crate, tmp / "target"):
        shutil.rmtree(path)


def main() -> None:
    """``python3 -m pytest_humaneval.shared_builds --manifest PATH``: build the shared builds under
    ``$PYTEST_HUMANEVAL_BUILD_CACHE`` and write where everything is to PATH (run inside a toolchain image)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--manifest", type=Path, required=True)
    args = parser.parse_args()
    found = manifest()
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    args.manifest.write_text(json.dumps(found, indent=1) + "\n")
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()

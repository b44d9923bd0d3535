#!/usr/bin/env python3
"""Generate engine/api/v1 from proto/engine/api/v1 (``make proto``), or check for drift.

    python scripts/generate_proto.py           # regenerate in place
    python scripts/generate_proto.py --check   # exit 1 when the committed code differs

Generating with ``-Iproto`` writes straight into ``engine/api/v1/`` and the generated imports
(``from engine.api.v1 import resources_pb2``) resolve with no rewriting.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("engine") / "api" / "v1"
INIT_TEXT = '"""Generated from proto/{package} by scripts/generate_proto.py: do not edit."""\n'


def generate(out: Path) -> None:
    """Run protoc on every .proto of the package, writing under ``out``."""
    # mypy-protobuf's plugins (protoc-gen-mypy, protoc-gen-mypy_grpc) live beside this Python.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    # proto/google/api/ holds annotations.proto and http.proto (the HTTP mapping, from
    # googleapis), so that proto/ alone is enough for a client in any language; their Python
    # modules come from googleapis-common-protos, not from here.
    arguments = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out=quiet:{out}",
        *protos,
    ]
    with contextlib.redirect_stderr(io.StringIO()) as chatter:
        failed = protoc.main(arguments) != 0
    if failed:
        print(chatter.getvalue(), file=sys.stderr)
        raise SystemExit("protoc failed")
    for package in (Path("engine") / "api", PACKAGE):
        (out / package / "__init__.py").write_text(
            INIT_TEXT.format(package=package.relative_to("engine")), encoding="utf-8"
        )


def generated_files(root: Path) -> list[Path]:
    api = root / "engine" / "api"
    return sorted(p.relative_to(root) for p in api.rglob("*") if p.is_file() and p.suffix != ".pyc")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the code is out of date")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        generate(out)
        fresh = [p for p in generated_files(out) if "__pycache__" not in p.parts]
        if arguments.check:
            committed = [p for p in generated_files(ROOT) if "__pycache__" not in p.parts]
            stale = [
                str(p)
                for p in sorted(set(fresh) | set(committed))
                if not (out / p).exists()
                or not (ROOT / p).exists()
                or not filecmp.cmp(out / p, ROOT / p, shallow=False)
            ]
            if stale:
                print("generated code is out of date; run `make proto`:", *stale, sep="\n  ")
                return 1
            print("generated code matches proto/")
            return 0
        shutil.rmtree(ROOT / "engine" / "api", ignore_errors=True)
        for path in fresh:
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / path, ROOT / path)
        print(f"generated {len(fresh)} files under engine/api/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

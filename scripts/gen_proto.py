"""Regenerates the committed Python stubs from proto/ (grpcio-tools), or checks them for drift.

python scripts/gen_proto.py           # write gen/
python scripts/gen_proto.py --check   # exit 1 if gen/ differs from what proto/ generates
"""

from __future__ import annotations

import argparse
import filecmp
import pathlib
import sys
import tempfile

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
GEN = ROOT / "gen"


def generate(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Regular packages (not namespace ones) so that pip, mypy and pytest all find them.
    for d in [out / "coalition", *(p for p in (out / "coalition").rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()


def differences(a: pathlib.Path, b: pathlib.Path) -> list[str]:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    out = [f"only in {cmp.left}: {n}" for n in cmp.left_only]
    out += [f"only in {cmp.right}: {n}" for n in cmp.right_only]
    out += [f"differs: {cmp.left}/{n}" for n in cmp.diff_files]
    for sub in cmp.common_dirs:
        out += differences(a / sub, b / sub)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    if not parser.parse_args().check:
        generate(GEN)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp))
        drift = differences(GEN / "coalition", pathlib.Path(tmp) / "coalition")
    for line in drift:
        print(line, file=sys.stderr)
    if drift:
        print("generated stubs drift from proto/: run python scripts/gen_proto.py", file=sys.stderr)
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())

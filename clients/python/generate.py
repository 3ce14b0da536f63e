"""Generates the Python stubs for every .proto under proto/ into clients/python/gen/.

    python clients/python/generate.py

The output is rebuilt from scratch each time and is git-ignored: the protos are the
source of truth. google/protobuf/*.proto come from grpcio-tools' bundled includes.
"""

import importlib.resources
import pathlib
import shutil
import sys

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
OUT = HERE / "gen"


def main() -> int:
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    if not files:
        print(f"generate: no .proto files under {PROTO}", file=sys.stderr)
        return 1
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{well_known}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        print(f"generate: protoc failed ({code})", file=sys.stderr)
        return 1
    print(f"generate: {len(files)} protos -> {OUT.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

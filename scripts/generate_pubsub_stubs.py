"""Regenerate the Pub/Sub API stubs from salesforce_sync/emulator/pubsub/pubsub_api.proto.

Writes pubsub_api_pb2.py and pubsub_api_pb2_grpc.py beside the proto and, identical, into the product's copy
(salesforce_sync/salesforce/pubsub_proto/): the product may not import the emulator, and two identical copies
of one proto file share Python's descriptor pool without conflict (a test checks they stay identical).

Run with a grpcio-tools whose protobuf matches the project's runtime (protobuf 6.x: grpcio-tools 1.80.0), in a
throwaway venv so the project's own protobuf stays put:
    python -m venv /tmp/protoc && /tmp/protoc/bin/pip install grpcio-tools==1.80.0 protobuf==6.33.6
    /tmp/protoc/bin/python scripts/generate_pubsub_stubs.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "salesforce_sync" / "emulator" / "pubsub"
COPIES = (SOURCE, ROOT / "salesforce_sync" / "salesforce" / "pubsub_proto")


def main() -> int:
    out = COPIES[0]
    status = protoc.main(["protoc", f"-I{SOURCE}", f"--python_out={out}", f"--grpc_python_out={out}",
                          str(SOURCE / "pubsub_api.proto")])
    if status:
        return status
    stub = out / "pubsub_api_pb2_grpc.py"
    # protoc writes a top-level import (the stubs live inside a package) and one it never uses.
    text = stub.read_text().replace("import pubsub_api_pb2 as", "from . import pubsub_api_pb2 as")
    stub.write_text(text.replace("import warnings\n", ""))
    for copy in COPIES[1:]:
        for name in ("pubsub_api_pb2.py", "pubsub_api_pb2_grpc.py"):
            shutil.copyfile(out / name, copy / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

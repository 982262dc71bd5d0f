#!/usr/bin/env python3
"""Keeps dependencies pointing one way: each folder under src/ may include only the layers
below it (see src/CMakeLists.txt and docs/architecture.md). Prints every offending include and
exits non-zero if there is one."""
import pathlib
import re
import sys

PROTO = {"etcdserverpb", "mvccpb", "authpb", "v3lockpb", "v3electionpb", "dolmen"}
CORE = ["base", "log", "metrics", "raft", "io", "wal", "backend", "mvcc", "lease", "auth", "watch"]
# log (structured logging) sits on base; every layer above base may log except raft, which is a
# pure state machine.
ALLOWED = {
    "base": set(),
    "log": {"base"},
    # Any layer may count: metrics depends on base only.
    "metrics": {"base"},
    "raft": {"base"},
    "io": {"base", "log"},
    "wal": {"metrics", "base", "log", "io", "raft"},
    "backend": {"metrics", "base", "log", "io"},
    "mvcc": {"base", "log", "io", "backend"},
    "lease": {"base", "log", "io", "backend"},
    # etcd's auth records are its authpb messages, stored as etcd stores them.
    "auth": {"base", "log", "io", "backend"} | PROTO,
    "watch": {"base", "log", "io", "backend", "mvcc"},
    "transport": {"metrics", "base", "log", "raft", "tls"} | PROTO,
    "server": set(CORE) | {"transport"} | PROTO,
    "tls": {"base", "log"},
    "api": set(CORE) | {"transport", "server", "tls"} | PROTO,
    "http": set(CORE) | {"transport", "server", "api"} | PROTO,
    "client": {"base", "log", "tls"} | PROTO,
    # AWS clients (SigV4, IMDS, Query APIs) for auto-scaling-group discovery.
    "aws": {"base", "log"},
    # v3 discovery is a client of an etcd-compatible service: etcd's protos (its gRPC stubs).
    "discovery": {"base", "log", "aws"} | PROTO,
    "embed": set(CORE) | {"transport", "server", "tls", "api", "http", "client", "aws", "discovery"} | PROTO,
    "sim": set(CORE) | {"transport", "server"} | PROTO,
}
# Real adapters the simulator must never link, and the one file allowed to include lmdb.h.
INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]', re.M)


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    problems = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in {".h", ".cc"}:
            continue
        layer = path.relative_to(src).parts[0]
        if layer not in ALLOWED:
            problems.append(f"{path}: folder '{layer}' is not in the layer table")
            continue
        text = path.read_text(errors="replace")
        for inc in INCLUDE.findall(text):
            top = inc.split("/")[0]
            if inc == "lmdb.h" and "backend/lmdb" not in str(path):
                problems.append(f"{path}: only src/backend/lmdb may include lmdb.h")
            if "/" not in inc or top == layer:
                continue
            if top in ALLOWED or top in PROTO:
                if top not in ALLOWED[layer]:
                    problems.append(f"{path}: layer '{layer}' may not include '{inc}'")
            if layer == "sim" and (top.startswith("grpc") or "posix" in inc or "lmdb" in inc):
                problems.append(f"{path}: the simulator may not include '{inc}'")
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

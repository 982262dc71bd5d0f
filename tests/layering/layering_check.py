#!/usr/bin/env python3
"""Keeps dependencies pointing one way (docs/architecture.md, "Layering rules"):

1. each folder under src/ may include only the layers below it (src/CMakeLists.txt's order);
2. the real adapters in sub-folders (io/posix, backend/lmdb) are layers of their own: only their
   own files, the composition root (src/embed) and test files may include them, so nothing in
   the core can reach the real disk or LMDB behind the interfaces' back;
3. each external library stays in the layer that wraps it: gRPC (and the generated *.grpc.pb.h
   service types) from src/transport up, never in src/server or below; LMDB only in
   src/backend/lmdb; libcurl and libxml2 only in src/aws; OpenSSL only in src/tls (digests
   also where ids and checksums are computed); GoogleTest only in test files.

4. the simulator (src/sim) never links gRPC, io/posix or LMDB: the link closure of every target
   src/sim/CMakeLists.txt defines, read from the dolmen_library/dolmen_test/target_link_libraries
   calls of all of src/, holds none of them (an include check alone would miss a library linked
   for a dependency's sake).

Prints every offending include or link and exits non-zero if there is one.
    layering_check.py [SRC_DIR]
"""
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

# Sub-folders that are layers of their own: the real implementation of an interface of the
# parent layer. Value: the layers the sub-folder itself may include (besides its parent).
SUBLAYERS = {
    "io/posix": {"base", "log"},
    "backend/lmdb": {"metrics", "base", "log", "io"},
}
# Who may include a sub-layer besides its own files and test files: the composition root.
COMPOSITION_ROOT = {"embed"}

GRPC_LAYERS = {"transport", "api", "http", "discovery", "embed"}
# (include pattern, layers or sub-layers allowed to include it, what the rule keeps).
EXTERNAL = [
    (re.compile(r"^(grpcpp|grpc\+\+|grpc)/"), GRPC_LAYERS,
     "gRPC stays in transport and above: the member (src/server) speaks protobuf messages and Status"),
    (re.compile(r"\.grpc\.pb\.h$"), GRPC_LAYERS,
     "generated gRPC service types stay in transport and above"),
    (re.compile(r"^google/protobuf/"), {"transport", "api", "http"},
     "protobuf's reflection and JSON mapping: the wire framing, the gRPC metrics and the gateway"),
    (re.compile(r"^lmdb\.h$"), {"backend/lmdb"}, "LMDB lives behind the backend interface"),
    (re.compile(r"^curl/"), {"aws"}, "libcurl is the AWS transport only"),
    (re.compile(r"^libxml/"), {"aws"}, "libxml2 reads the AWS Query APIs' answers only"),
    # Digests (SHA-1 member ids, SHA-256 snapshot checksums, SigV4's HMAC) are not TLS.
    (re.compile(r"^openssl/(sha|evp|hmac)\.h$"), {"tls", "server", "aws"},
     "OpenSSL digests only where ids, checksums and signatures are computed"),
    (re.compile(r"^openssl/(?!(sha|evp|hmac)\.h$)"), {"tls"}, "OpenSSL's TLS and X.509 stay in src/tls"),
    (re.compile(r"^microhttpd\.h$"), {"http"}, "libmicrohttpd is the HTTP/1 server of src/http"),
    (re.compile(r"^(spdlog|fmt)/"), {"log"}, "spdlog delivers src/log's lines; others call src/log"),
    (re.compile(r"^systemd/"), {"log", "embed"}, "sd_notify in the composition root, the journal sink in log"),
    (re.compile(r"^yaml-cpp/"), {"embed"}, "--config-file is read by the composition root"),
    (re.compile(r"^(resolv\.h|arpa/nameser)"), {"discovery"}, "DNS SRV lookups belong to discovery"),
]
TEST_ONLY = re.compile(r"^(gtest|gmock)/")

# Violations the tree has today, each with its reason and the way out. The check fails if one of
# them disappears too, so this list never outlives the code it excuses.
KNOWN = {
    ("transport/peer_tls.cc", "openssl/pem.h"):
        "parses the PEM certificate gRPC hands its custom verifier; belongs in tls/identity "
        "(a tls::CheckPeerPem taking the PEM text)",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]', re.M)


def is_test_file(rel: pathlib.PurePath) -> bool:
    """Unit tests and their helpers: foo_test.cc, wal_test_util.h, test_support.h, test_util.cc."""
    name = rel.name
    return (name.endswith(("_test.cc", "_test_util.h", "_test_util.cc"))
            or name.startswith("test_"))


def unit_of(rel: pathlib.PurePath) -> str:
    """The layer or sub-layer a file belongs to: "io/posix" for src/io/posix/x.cc, else "io"."""
    if len(rel.parts) > 2 and "/".join(rel.parts[:2]) in SUBLAYERS:
        return "/".join(rel.parts[:2])
    return rel.parts[0]


def sublayer_of_include(inc: str):
    for sub in SUBLAYERS:
        if inc.startswith(sub + "/"):
            return sub
    return None


def check_file(rel: pathlib.PurePath, text: str) -> list:
    """Returns (include, message) pairs for every rule `rel` (a path relative to src/) breaks."""
    layer = rel.parts[0]
    if layer not in ALLOWED:
        return [("", f"folder '{layer}' is not in the layer table")]
    unit = unit_of(rel)
    test = is_test_file(rel)
    found = []
    for inc in INCLUDE.findall(text):
        for pattern, allowed, why in EXTERNAL:
            if pattern.search(inc) and unit not in allowed and layer not in allowed:
                found.append((inc, f"'{inc}' is not allowed in src/{unit}: {why}"))
        if TEST_ONLY.search(inc) and not test:
            found.append((inc, f"'{inc}' only in test files (*_test.cc, test_*.h)"))
        sub = sublayer_of_include(inc)
        if sub is not None and sub != unit and not test and layer not in COMPOSITION_ROOT:
            found.append((inc, f"only src/{sub}, the composition root (src/embed) and tests may "
                               f"include '{inc}'"))
        if unit in SUBLAYERS and "/" in inc:
            top = inc.split("/")[0]
            if (top in ALLOWED or top in PROTO) and top != layer and top not in SUBLAYERS[unit]:
                found.append((inc, f"sub-layer '{unit}' may not include '{inc}'"))
        top = inc.split("/")[0]
        if "/" in inc and top != layer and (top in ALLOWED or top in PROTO) and top not in ALLOWED[layer]:
            found.append((inc, f"layer '{layer}' may not include '{inc}'"))
        if layer == "sim" and (top.startswith("grpc") or "posix" in inc or "lmdb" in inc):
            found.append((inc, f"the simulator may not include '{inc}'"))
    return found


def check_tree(src: pathlib.Path, known: dict):
    """Returns (problems, excused): lines to print. Stale `known` entries are problems."""
    problems, excused, seen = [], [], set()
    for path in sorted(src.rglob("*")):
        if path.suffix not in {".h", ".cc"}:
            continue
        rel = path.relative_to(src)
        for inc, message in check_file(rel, path.read_text(errors="replace")):
            key = (rel.as_posix(), inc)
            if key in known:
                seen.add(key)
                excused.append(f"{path}: {message} (known: {known[key]})")
            else:
                problems.append(f"{path}: {message}")
    for key in sorted(set(known) - seen):
        problems.append(f"{key[0]}: listed as a known exception for '{key[1]}' but no longer "
                            "breaks the rule; remove it from KNOWN in layering_check.py")
    return problems, excused


# Libraries the simulator may never link, directly or through another target.
SIM_FORBIDDEN_LINKS = re.compile(r"grpc|posix|lmdb", re.I)
CMAKE_CALL = re.compile(r"\b(dolmen_library|dolmen_test|target_link_libraries)\s*\(([^)]*)\)", re.S)
CMAKE_KEYWORDS = {"SOURCES", "DEPS", "LABELS", "PUBLIC", "PRIVATE", "INTERFACE"}


def cmake_targets(path: pathlib.Path) -> dict:
    """Target -> the libraries it links, from one CMakeLists.txt."""
    links = {}
    text = re.sub(r"#[^\n]*", "", path.read_text(errors="replace"))
    for call, body in CMAKE_CALL.findall(text):
        words = body.split()
        if not words:
            continue
        name, rest = words[0], words[1:]
        deps = links.setdefault(name, set())
        if call == "target_link_libraries":
            deps.update(w for w in rest if w not in CMAKE_KEYWORDS)
            continue
        section = None
        for w in rest:
            if w in CMAKE_KEYWORDS:
                section = w
            elif section == "DEPS":
                deps.add(w)
    return links


def check_sim_links(src: pathlib.Path) -> list:
    """Problems: each forbidden library in the link closure of a target src/sim defines."""
    sim_cmake = src / "sim" / "CMakeLists.txt"
    if not sim_cmake.exists():
        return []
    graph = {}
    # The generated protocol libraries are defined beside src/ (proto/); which of them carries
    # the gRPC stubs matters here.
    proto = src.parent / "proto" / "CMakeLists.txt"
    for path in sorted(src.rglob("CMakeLists.txt")) + ([proto] if proto.exists() else []):
        for name, deps in cmake_targets(path).items():
            graph.setdefault(name, set()).update(deps)
    problems = []
    for target in sorted(cmake_targets(sim_cmake)):
        seen, stack, via = set(), [target], {target: None}
        while stack:
            t = stack.pop()
            for d in sorted(graph.get(t, ())):
                if d in seen:
                    continue
                seen.add(d)
                via[d] = t
                stack.append(d)
        for d in sorted(seen):
            if SIM_FORBIDDEN_LINKS.search(d):
                chain, t = [d], via[d]
                while t is not None:
                    chain.append(t)
                    t = via[t]
                problems.append(f"{sim_cmake}: the simulator may not link '{d}' "
                                f"({' -> '.join(reversed(chain))})")
    return problems


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    problems, excused = check_tree(src, KNOWN)
    problems += check_sim_links(src)
    for p in excused:
        print("excused:", p)
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} problem(s), {len(excused)} known exception(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Compares Dolmen's protos with etcd's own descriptors, field by field.

Ours:   a FileDescriptorSet built by protoc from proto/ (--include_imports).
Theirs: descriptors that etcd clients were generated from, read from Debian packages:
  * python3-etcd3: etcd3/etcdrpc/*_pb2.py carry a serialized FileDescriptorProto
    (etcdserverpb, mvccpb, authpb; an older, 3.3-era API).
  * golang-etcd-server-dev (etcd 3.4): *.pb.go carry a gzipped FileDescriptorProto
    (etcdserverpb, mvccpb, authpb, v3lockpb, v3electionpb).

Rule: everything in a reference must exist in ours with the same name, number, type,
label, type name and oneof; enum values and service methods (input, output,
streaming) likewise. Things only in ours (etcd 3.5 additions) are fine and are listed
with --verbose. Known, wire-identical differences are in ALLOWED below, each with its
reason. Exit status: 0 all equal, 1 mismatches, 77 no reference found (a failure: install-deps installs the references).
"""

import argparse
import ast
import gzip
import os
import re
import subprocess
import sys

from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto

# (reference, "package.Message.field", attribute) -> reason. Every entry must be
# wire-identical: string and bytes both encode as length-delimited bytes.
ALLOWED = {
    ("python3-etcd3", "etcdserverpb.AuthRoleRevokePermissionRequest.key", "type"):
        "python-etcd3 ships etcd 3.3's proto where this is string; etcd 3.4+ made it bytes. "
        "Same wire encoding.",
    ("python3-etcd3", "etcdserverpb.AuthRoleRevokePermissionRequest.range_end", "type"):
        "as for key: string in etcd 3.3, bytes since 3.4; same wire encoding.",
}

PY_ETCD3_FILES = ("kv_pb2.py", "auth_pb2.py", "rpc_pb2.py")
GO_ETCD_ROOT = "/usr/share/gocode/src/go.etcd.io/etcd"
GO_ETCD_FILES = (
    "mvcc/mvccpb/kv.pb.go",
    "auth/authpb/auth.pb.go",
    "etcdserver/etcdserverpb/rpc.pb.go",
    "etcdserver/api/v3lock/v3lockpb/v3lock.pb.go",
    "etcdserver/api/v3election/v3electionpb/v3election.pb.go",
)


# ------------------------------------------------------------------ loading

def load_ours(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    return list(fds.file)


def find_py_etcd3_dir():
    """The etcdrpc folder of python3-etcd3, via dpkg, else via the import path."""
    try:
        out = subprocess.run(["dpkg", "-L", "python3-etcd3"], capture_output=True, text=True,
                             check=False).stdout
        for line in out.splitlines():
            if line.rstrip("/").endswith("/etcd3/etcdrpc"):
                return line.rstrip("/")
    except OSError:
        pass
    import importlib.util
    spec = importlib.util.find_spec("etcd3")  # does not run etcd3/__init__.py
    if spec and spec.submodule_search_locations:
        d = os.path.join(list(spec.submodule_search_locations)[0], "etcdrpc")
        if os.path.isdir(d):
            return d
    return None


def serialized_pb_from_py(path):
    """The FileDescriptorProto bytes in a protoc-generated _pb2.py, without importing it."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        candidates = [kw.value for kw in node.keywords if kw.arg == "serialized_pb"]
        if getattr(node.func, "attr", None) == "AddSerializedFile" and node.args:
            candidates.append(node.args[0])
        for value in candidates:
            # Old protoc: _b('...') with latin1 text; new protoc: b'...'.
            if isinstance(value, ast.Call) and value.args:
                value = value.args[0]
            if isinstance(value, ast.Constant):
                v = value.value
                return v if isinstance(v, bytes) else v.encode("latin1")
    raise ValueError("no serialized descriptor in " + path)


def load_py_etcd3():
    d = find_py_etcd3_dir()
    if not d:
        return None
    files = []
    for name in PY_ETCD3_FILES:
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(serialized_pb_from_py(os.path.join(d, name)))
        files.append(fdp)
    return files


def load_go_etcd():
    paths = [os.path.join(GO_ETCD_ROOT, p) for p in GO_ETCD_FILES]
    if not all(os.path.exists(p) for p in paths):
        return None
    files = []
    for p in paths:
        src = open(p, encoding="utf-8").read()
        m = re.search(r"var fileDescriptor\w* = \[\]byte\{(.*?)\n\}", src, re.S)
        if not m:
            raise ValueError("no gzipped descriptor in " + p)
        raw = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-fA-F]{2})", m.group(1)))
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(gzip.decompress(raw))
        files.append(fdp)
    return files


# ------------------------------------------------------------------ flattening

def flatten(files):
    """Maps full names to comparable tuples: messages' fields, enums' values, services' methods."""
    fields, enums, methods = {}, {}, {}

    def add_enum(prefix, e):
        enums[prefix + e.name] = {v.name: v.number for v in e.value}

    def add_message(prefix, m):
        full = prefix + m.name
        fields[full] = {}
        for f in m.field:
            oneof = m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else ""
            fields[full][f.name] = {
                "number": f.number,
                "type": FDP.Type.Name(f.type),
                "label": FDP.Label.Name(f.label),
                "type_name": f.type_name.lstrip("."),
                "oneof": oneof,
            }
        for e in m.enum_type:
            add_enum(full + ".", e)
        for n in m.nested_type:
            add_message(full + ".", n)

    for fdp in files:
        prefix = fdp.package + "." if fdp.package else ""
        for m in fdp.message_type:
            add_message(prefix, m)
        for e in fdp.enum_type:
            add_enum(prefix, e)
        for s in fdp.service:
            for meth in s.method:
                methods[prefix + s.name + "/" + meth.name] = {
                    "input": meth.input_type.lstrip("."),
                    "output": meth.output_type.lstrip("."),
                    "client_streaming": meth.client_streaming,
                    "server_streaming": meth.server_streaming,
                }
    return fields, enums, methods


# ------------------------------------------------------------------ comparing

def compare(ref_name, ref_files, our_files, verbose):
    """Returns the list of failures; prints what is only in ours when verbose."""
    ref_fields, ref_enums, ref_methods = flatten(ref_files)
    our_fields, our_enums, our_methods = flatten(our_files)
    failures, allowed, extras = [], [], []

    def mismatch(what, attr, theirs, ours):
        key = (ref_name, what, attr)
        line = f"{what}: {attr} is {ours!r} in ours, {theirs!r} in {ref_name}"
        if key in ALLOWED:
            allowed.append(line + " [allowed: " + ALLOWED[key] + "]")
        else:
            failures.append(line)

    for msg, ref_msg_fields in sorted(ref_fields.items()):
        if msg not in our_fields:
            failures.append(f"message {msg} missing in ours")
            continue
        for name, ref_f in ref_msg_fields.items():
            what = f"{msg}.{name}"
            our_f = our_fields[msg].get(name)
            if our_f is None:
                failures.append(f"field {what} (= {ref_f['number']}) missing in ours")
                continue
            for attr in ("number", "type", "label", "type_name", "oneof"):
                if ref_f[attr] != our_f[attr]:
                    mismatch(what, attr, ref_f[attr], our_f[attr])
        ref_numbers = {f["number"] for f in ref_msg_fields.values()}
        for name, our_f in our_fields[msg].items():
            if name not in ref_msg_fields:
                if our_f["number"] in ref_numbers:
                    failures.append(f"{msg}.{name}: number {our_f['number']} is used by another "
                                    f"field in {ref_name}")
                else:
                    extras.append(f"field {msg}.{name} = {our_f['number']}")

    for enum, ref_values in sorted(ref_enums.items()):
        if enum not in our_enums:
            failures.append(f"enum {enum} missing in ours")
            continue
        for name, number in ref_values.items():
            if name not in our_enums[enum]:
                failures.append(f"enum value {enum}.{name} (= {number}) missing in ours")
            elif our_enums[enum][name] != number:
                mismatch(f"{enum}.{name}", "value", number, our_enums[enum][name])
        for name in our_enums[enum].keys() - ref_values.keys():
            extras.append(f"enum value {enum}.{name}")

    for meth, ref_m in sorted(ref_methods.items()):
        if meth not in our_methods:
            failures.append(f"method /{meth} missing in ours")
            continue
        for attr, value in ref_m.items():
            if our_methods[meth][attr] != value:
                mismatch("/" + meth, attr, value, our_methods[meth][attr])

    ref_packages = {n.rsplit(".", 1)[0] for n in ref_fields} | {
        n.split("/")[0].rsplit(".", 1)[0] for n in ref_methods}
    for msg in sorted(our_fields.keys() - ref_fields.keys()):
        if msg.split(".")[0] in {p.split(".")[0] for p in ref_packages}:
            extras.append(f"message {msg}")
    for meth in sorted(our_methods.keys() - ref_methods.keys()):
        if meth.split(".")[0] in {p.split(".")[0] for p in ref_packages}:
            extras.append(f"method /{meth}")

    print(f"== {ref_name}: {len(ref_fields)} messages, {len(ref_enums)} enums, "
          f"{len(ref_methods)} methods compared; {len(failures)} mismatches, "
          f"{len(allowed)} allowed differences, {len(extras)} additions only in ours")
    for line in failures:
        print("  MISMATCH " + line)
    for line in allowed:
        print("  allowed  " + line)
    if verbose:
        for line in extras:
            print("  ours-only " + line)
    return failures


def self_test(ours, found):
    """Breaks copies of our descriptors in four ways and checks each break is reported."""
    def edit(files, fn):
        copies = []
        for f in files:
            c = descriptor_pb2.FileDescriptorProto()
            c.CopyFrom(f)
            copies.append(c)
        for c in copies:
            fn(c)
        return copies

    def message(fdp, name):
        return next((m for m in fdp.message_type if m.name == name), None)

    def renumber(fdp):
        m = message(fdp, "PutRequest")
        if m:
            next(f for f in m.field if f.name == "ignore_lease").number = 60

    def retype(fdp):
        m = message(fdp, "KeyValue")
        if m:
            next(f for f in m.field if f.name == "lease").type = FDP.TYPE_UINT64

    def revalue(fdp):
        m = message(fdp, "WatchCreateRequest")
        if m:
            m.enum_type[0].value[1].number = 5

    def unstream(fdp):
        for s in fdp.service:
            for meth in s.method:
                if s.name == "Watch":
                    meth.server_streaming = False

    ok = True
    for label, fn in (("renumbered field", renumber), ("retyped field", retype),
                      ("changed enum value", revalue), ("lost streaming", unstream)):
        for name, files in found:
            print(f"-- self-test: {label} vs {name}")
            if not compare(name, files, edit(ours, fn), verbose=False):
                print(f"SELF-TEST FAILED: {label} not detected against {name}")
                ok = False
    print("self-test OK" if ok else "self-test FAILED")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("descriptor_set", help="our FileDescriptorSet (protoc --include_imports)")
    parser.add_argument("--verbose", "-v", action="store_true", help="also list ours-only additions")
    parser.add_argument("--self-test", action="store_true",
                        help="check that deliberate breaks of our descriptors are detected")
    args = parser.parse_args()

    ours = load_ours(args.descriptor_set)
    references = [("python3-etcd3", load_py_etcd3()), ("etcd-3.4-go", load_go_etcd())]
    found = [(name, files) for name, files in references if files]
    for name, files in references:
        if not files:
            print(f"== {name}: not installed, skipped")
    if not found:
        print("no reference descriptors found; nothing compared")
        return 77

    if args.self_test:
        return self_test(ours, found)

    failures = []
    for name, files in found:
        failures += compare(name, files, ours, args.verbose)
    print("FAIL" if failures else "OK: every reference message, field, enum value and method "
          "matches ours")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

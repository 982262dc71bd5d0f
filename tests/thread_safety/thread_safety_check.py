#!/usr/bin/env python3
"""Clang's thread-safety analysis over the code that declares what its locks guard.

Every translation unit under src/ whose own source or header uses Abseil's thread annotations
(ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...) is compiled by clang 16 with
-fsyntax-only -Wthread-safety -Werror=thread-safety, with the include paths and defines of the
release build's compile_commands.json (GCC builds the binaries; clang only checks). An access to
a guarded member without its lock, a call that needs a lock the caller does not hold, or a lock
held on return fails the check. Prints each clang error; exits non-zero if there is one.

    thread_safety_check.py BUILD_DIR SRC_DIR          the check (ctest: thread_safety_check)
    thread_safety_check.py --self-test BUILD_DIR      a seeded unguarded access must fail it
"""
import concurrent.futures
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

CLANG = "/usr/bin/clang++-16"
FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety", "-Wno-unknown-warning-option",
         "-Wno-unused-command-line-argument"]
ANNOTATION = re.compile(r"\bABSL_(GUARDED_BY|PT_GUARDED_BY|EXCLUSIVE_LOCKS_REQUIRED|LOCKS_EXCLUDED|"
                        r"SHARED_LOCKS_REQUIRED)\b")
TIMEOUT_S = 120  # one translation unit


def compile_flags(entry):
    """The -I, -isystem, -D and -std flags of one compile_commands.json entry."""
    args = entry.get("arguments") or shlex.split(entry["command"])
    keep, i = [], 1
    while i < len(args):
        a = args[i]
        if a in ("-I", "-isystem", "-D", "-include"):
            keep += [a, args[i + 1]]
            i += 2
            continue
        if a.startswith(("-I", "-D", "-std=", "-isystem")):
            keep.append(a)
        i += 1
    return keep


def annotated(source: pathlib.Path) -> bool:
    for path in (source, source.with_suffix(".h")):
        if path.exists() and ANNOTATION.search(path.read_text(errors="replace")):
            return True
    return False


def check_one(entry):
    cmd = [CLANG] + FLAGS + compile_flags(entry) + [entry["file"]]
    run = subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True,
                         timeout=TIMEOUT_S)
    return entry["file"], run.returncode, run.stderr


def load_entries(build_dir):
    path = pathlib.Path(build_dir) / "compile_commands.json"
    if not path.exists():
        sys.exit(f"thread-safety: {path} is missing: configure the build first (scripts/build.sh)")
    return json.loads(path.read_text())


def run_check(entries, jobs):
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for file, rc, err in pool.map(check_one, entries):
            if rc != 0:
                failed += 1
                print(f"FAIL {file}\n{err}")
            else:
                print(f"ok   {file}")
    return failed


def main(argv):
    if not os.access(CLANG, os.X_OK):
        print(f"thread-safety: {CLANG} is missing: run scripts/install-deps.sh")
        return 1
    jobs = max(1, min(2, os.cpu_count() or 1))
    if argv[:1] == ["--self-test"]:
        return self_test(argv[1])
    build_dir, src = argv[0], pathlib.Path(argv[1]).resolve()
    entries = [e for e in load_entries(build_dir)
               if pathlib.Path(e["file"]).resolve().is_relative_to(src)
               and not e["file"].endswith("_test.cc") and annotated(pathlib.Path(e["file"]))]
    if not entries:
        print("thread-safety: no annotated translation unit found (wrong SRC_DIR?)")
        return 1
    failed = run_check(entries, jobs)
    print(f"thread-safety: {len(entries)} translation unit(s), {failed} failed")
    return 1 if failed else 0


SEEDED = r"""
#include "base/mutex.h"
namespace {
class Counter {
 public:
  void Good() { dolmen::base::MutexLock l(&mu_); ++n_; }
  void Bad() { ++n_; }  // seeded: no lock
 private:
  dolmen::base::Mutex mu_;
  int n_ ABSL_GUARDED_BY(mu_) = 0;
};
}  // namespace
int main() { Counter c; c.Good(); c.Bad(); }
"""


def self_test(build_dir):
    """The seeded file must fail with the unguarded write named; the same file without Bad()'s
    body must pass (so the failure is the analysis, not a broken command line)."""
    entries = load_entries(build_dir)
    base = next((e for e in entries if e["file"].endswith("src/server/read_pool.cc")), None)
    if base is None:
        print("self-test: no entry for src/server/read_pool.cc in compile_commands.json")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        bad = pathlib.Path(tmp) / "seeded_bad.cc"
        good = pathlib.Path(tmp) / "seeded_good.cc"
        bad.write_text(SEEDED)
        good.write_text(SEEDED.replace("void Bad() { ++n_; }", "void Bad() {}"))
        _, rc_bad, err_bad = check_one(dict(base, file=str(bad)))
        _, rc_good, err_good = check_one(dict(base, file=str(good)))
    ok = True
    if rc_bad == 0 or "requires holding mutex 'mu_'" not in err_bad:
        print(f"self-test: the seeded unguarded write was not reported (rc={rc_bad}):\n{err_bad}")
        ok = False
    if rc_good != 0:
        print(f"self-test: the file without the seeded write failed (rc={rc_good}):\n{err_good}")
        ok = False
    print("self-test:", "ok (seeded write refused: %s)" % err_bad.strip().splitlines()[0]
          if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

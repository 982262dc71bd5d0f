#!/usr/bin/env python3
"""Self-test of layering_check.py: a small tree with one seeded violation of each kind of rule
must be refused with that violation named, and the allowed includes beside them must pass."""
import pathlib
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import layering_check  # noqa: E402

# path under src/ -> (file text, the include the check must name, or None if the file is fine)
TREE = {
    # Layers: mvcc sits below server.
    "mvcc/bad_up.cc": ('#include "server/server.h"\n', "server/server.h"),
    # Sub-layers: the core may not reach the real disk or LMDB ...
    "wal/bad_posix.cc": ('#include "io/posix/posix_file_system.h"\n', "io/posix/posix_file_system.h"),
    "mvcc/bad_lmdb.h": ('#include "backend/lmdb/lmdb_backend.h"\n', "backend/lmdb/lmdb_backend.h"),
    # ... but tests and the composition root may.
    "mvcc/store_test.cc": ('#include "backend/lmdb/lmdb_backend.h"\n#include <gtest/gtest.h>\n', None),
    "server/test_support.h": ('#include "io/posix/temp_dir.h"\n#include <gtest/gtest.h>\n', None),
    "embed/member.cc": ('#include "io/posix/posix_file_system.h"\n#include <grpcpp/grpcpp.h>\n', None),
    # A sub-layer is held to its own list: io/posix may not use the backend.
    "io/posix/bad.cc": ('#include "backend/backend.h"\n', "backend/backend.h"),
    "io/posix/posix_file_system.cc": ('#include "io/file_system.h"\n#include "log/log.h"\n', None),
    # External libraries per layer.
    "server/bad_grpc.cc": ("#include <grpcpp/grpcpp.h>\n", "grpcpp/grpcpp.h"),
    "watch/bad_stub.h": ('#include "etcdserverpb/rpc.grpc.pb.h"\n', "etcdserverpb/rpc.grpc.pb.h"),
    "server/ok_messages.h": ('#include "etcdserverpb/rpc.pb.h"\n#include <openssl/sha.h>\n', None),
    "backend/bad_lmdb.cc": ("#include <lmdb.h>\n", "lmdb.h"),
    "backend/lmdb/lmdb_backend.cc": ("#include <lmdb.h>\n", None),
    "discovery/bad_curl.cc": ("#include <curl/curl.h>\n", "curl/curl.h"),
    "aws/curl_transport.cc": ("#include <curl/curl.h>\n#include <openssl/hmac.h>\n", None),
    "server/bad_tls.cc": ("#include <openssl/ssl.h>\n", "openssl/ssl.h"),
    "tls/context.cc": ("#include <openssl/ssl.h>\n", None),
    "mvcc/bad_spdlog.cc": ("#include <spdlog/logger.h>\n", "spdlog/logger.h"),
    "raft/bad_gtest.h": ("#include <gtest/gtest.h>\n", "gtest/gtest.h"),
    "sim/bad_sim.cc": ('#include "io/posix/posix_file_system.h"\n', "io/posix/posix_file_system.h"),
}


class LayeringCheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.src = pathlib.Path(self.tmp.name) / "src"
        for rel, (text, _) in TREE.items():
            path = self.src / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def tearDown(self):
        self.tmp.cleanup()

    def test_each_seeded_violation_is_named_and_allowed_includes_pass(self):
        problems, _ = layering_check.check_tree(self.src, {})
        for rel, (_, bad) in TREE.items():
            hits = [p for p in problems if p.startswith(f"{self.src / rel}:")]
            if bad is None:
                self.assertEqual(hits, [], f"{rel} is allowed but was refused")
            else:
                self.assertTrue(any(bad in h for h in hits), f"{rel}: '{bad}' not reported in {problems}")

    def test_known_exception_is_excused_and_a_stale_one_fails(self):
        known = {("server/bad_tls.cc", "openssl/ssl.h"): "seeded",
                 ("mvcc/gone.cc", "lmdb.h"): "stale"}
        problems, excused = layering_check.check_tree(self.src, known)
        self.assertTrue(any("server/bad_tls.cc" in e for e in excused))
        self.assertFalse(any("server/bad_tls.cc" in p for p in problems))
        self.assertTrue(any("mvcc/gone.cc" in p and "no longer" in p for p in problems))

    def test_sim_may_not_link_grpc_posix_or_lmdb_even_through_another_target(self):
        (self.src / "io" / "CMakeLists.txt").write_text(
            "dolmen_library(dolmen_io SOURCES a.cc DEPS dolmen_base)\n"
            "dolmen_library(dolmen_io_posix SOURCES posix/p.cc DEPS dolmen_io)\n")
        (self.src / "server" / "CMakeLists.txt").write_text(
            "dolmen_library(dolmen_server SOURCES s.cc DEPS dolmen_io)  # not dolmen_io_posix\n")
        sim = self.src / "sim" / "CMakeLists.txt"
        sim.write_text("dolmen_library(dolmen_sim SOURCES c.cc DEPS dolmen_server)\n"
                       "dolmen_test(dolmen_sim_test SOURCES t.cc DEPS dolmen_sim LABELS sim)\n")
        self.assertEqual(layering_check.check_sim_links(self.src), [])
        (self.src / "server" / "CMakeLists.txt").write_text(
            "dolmen_library(dolmen_server SOURCES s.cc DEPS dolmen_io)\n"
            "target_link_libraries(dolmen_server PRIVATE dolmen_io_posix PkgConfig::GRPCPP)\n")
        problems = layering_check.check_sim_links(self.src)
        self.assertTrue(any("'dolmen_io_posix'" in p and "dolmen_sim -> dolmen_server" in p
                            for p in problems), problems)
        self.assertTrue(any("PkgConfig::GRPCPP" in p for p in problems), problems)

    def test_command_fails_on_the_seeded_tree(self):
        run = subprocess.run([sys.executable, str(HERE / "layering_check.py"), str(self.src)],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 1, run.stdout)
        self.assertIn("grpcpp/grpcpp.h", run.stdout)


if __name__ == "__main__":
    unittest.main()

#include "embed/flag_set.h"

#include <gtest/gtest.h>

namespace dolmen::embed {
namespace {

struct Fixture {
  std::string name = "default";
  bool flag = false;
  int64_t n = 128;
  FlagSet set;
  Fixture() {
    set.AddString("name", &name, "");
    set.AddBool("auto-tls", &flag, "");
    set.AddInt("max-txn-ops", &n, "");
  }
  Status Parse(std::vector<const char*> args, std::vector<std::string> env = {},
               std::vector<std::string>* warnings = nullptr) {
    args.insert(args.begin(), "dolmen");
    std::vector<std::string> local;
    return set.Parse(static_cast<int>(args.size()), args.data(), env, warnings ? warnings : &local);
  }
};

TEST(FlagSetTest, GoFlagForms) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"--name", "a", "-max-txn-ops=7", "--auto-tls"}).ok());
  EXPECT_EQ(f.name, "a");
  EXPECT_EQ(f.n, 7);
  EXPECT_TRUE(f.flag);
  Fixture g;
  ASSERT_TRUE(g.Parse({"-name=b", "--auto-tls=false"}).ok());
  EXPECT_EQ(g.name, "b");
  EXPECT_FALSE(g.flag);
}

TEST(FlagSetTest, ErrorsAsEtcd) {
  Fixture f;
  EXPECT_EQ(f.Parse({"--foo"}).message(), "flag provided but not defined: -foo");
  EXPECT_EQ(f.Parse({"--max-txn-ops", "abc"}).message(),
            "invalid value \"abc\" for flag -max-txn-ops: parse error");
  EXPECT_EQ(f.Parse({"--name"}).message(), "flag needs an argument: -name");
  EXPECT_EQ(f.Parse({"stray"}).message(), "'stray' is not a valid flag");
}

TEST(FlagSetTest, EnvironmentFillsUnsetFlags) {
  Fixture f;
  std::vector<std::string> warnings;
  ASSERT_TRUE(f.Parse({"--name", "cli"},
                      {"ETCD_NAME=env", "ETCD_MAX_TXN_OPS=9", "ETCD_FOO=1", "PATH=/bin"}, &warnings)
                  .ok());
  EXPECT_EQ(f.name, "cli");  // the command line wins
  EXPECT_EQ(f.n, 9);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("ETCD_NAME"), std::string::npos);
  EXPECT_EQ(warnings[1], "unrecognized environment variable ETCD_FOO=1");
  Fixture g;
  EXPECT_EQ(g.Parse({}, {"ETCD_MAX_TXN_OPS=x"}).message(),
            "invalid value \"x\" for environment variable ETCD_MAX_TXN_OPS: parse error");
}

}  // namespace
}  // namespace dolmen::embed

// Cgroup layout against fake hierarchies (plain directories), so the v1, v2
// and not-writable paths are all exercised whatever this machine mounts.
#include "backend/cgroup.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

using trainyard::backend::Cgroups;
namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST(Cgroups, V2WritesMemoryMaxAndCpuMaxInOneGroup) {
  fs::path root = trainyard::test::freshDir();
  std::ofstream(root / "cgroup.controllers") << "cpu memory";
  Cgroups cg(root.string());
  ASSERT_EQ(cg.mode(), Cgroups::Mode::V2);
  std::string warning;
  auto g = cg.create("job-1", 256LL << 20, 1500, warning);
  ASSERT_EQ(g.procs_files.size(), 1u);
  EXPECT_EQ(g.procs_files[0], (root / "trainyard" / "job-1" / "cgroup.procs").string());
  EXPECT_EQ(slurp(root / "trainyard" / "job-1" / "memory.max"), std::to_string(256LL << 20));
  EXPECT_EQ(slurp(root / "trainyard" / "job-1" / "cpu.max"), "150000 100000");
  EXPECT_NE(slurp(root / "trainyard" / "cgroup.subtree_control").find("+memory"), std::string::npos);
  std::ofstream(root / "trainyard" / "job-1" / "memory.events") << "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n";
  EXPECT_TRUE(cg.oomKilled(g));
}

TEST(Cgroups, V1UsesMemoryHierarchyOnlyWithALimit) {
  fs::path root = trainyard::test::freshDir();
  fs::create_directories(root / "memory");
  fs::create_directories(root / "cpu");
  Cgroups cg(root.string());
  ASSERT_EQ(cg.mode(), Cgroups::Mode::V1);
  std::string warning;
  auto none = cg.create("free", 0, 0, warning);
  EXPECT_TRUE(none.procs_files.empty());  // nothing to enforce, no cgroup to join
  auto g = cg.create("job-2", 1LL << 30, 0, warning);
  ASSERT_EQ(g.procs_files.size(), 1u);
  EXPECT_EQ(slurp(root / "memory" / "trainyard" / "job-2" / "memory.limit_in_bytes"), std::to_string(1LL << 30));
  EXPECT_FALSE(cg.oomKilled(g));
  std::ofstream(root / "memory" / "trainyard" / "job-2" / "memory.oom_control") << "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
  EXPECT_TRUE(cg.oomKilled(g));
  auto both = cg.create("job-3", 1LL << 30, 2000, warning);
  EXPECT_EQ(both.procs_files.size(), 2u);
  EXPECT_EQ(slurp(root / "cpu" / "trainyard" / "job-3" / "cpu.cfs_quota_us"), "200000");
  EXPECT_TRUE(warning.empty()) << warning;
}

TEST(Cgroups, NoHierarchyMeansNotEnforcedWithAReason) {
  fs::path root = trainyard::test::freshDir();
  Cgroups cg(root.string());
  EXPECT_EQ(cg.mode(), Cgroups::Mode::None);
  std::string warning;
  auto g = cg.create("job", 1LL << 30, 0, warning);
  EXPECT_TRUE(g.procs_files.empty());
  EXPECT_NE(warning.find("limits not enforced: no cgroup hierarchy under " + root.string()), std::string::npos)
      << warning;
}

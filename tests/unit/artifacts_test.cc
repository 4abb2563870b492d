// A job's outputs as the API and `trainyard outputs` reach them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "artifacts/artifact_store.h"
#include "test_util.h"

namespace trainyard::artifacts {
namespace {
namespace fs = std::filesystem;

TEST(Artifacts, OnlyPlainRelativePathsAreAccepted) {
  EXPECT_TRUE(isSafeRelativePath("model.pt"));
  EXPECT_TRUE(isSafeRelativePath("checkpoints/epoch-3/model.pt"));
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a\\b", "a/"})
    EXPECT_FALSE(isSafeRelativePath(bad)) << bad;
  EXPECT_FALSE(isSafeRelativePath(std::string("a\0b", 3)));
  EXPECT_FALSE(isSafeRelativePath(std::string(5000, 'a')));
}

TEST(Artifacts, OnlyImagesAndTextAreShownInline) {
  bool shown = false;
  EXPECT_EQ(safeContentType("plots/loss.PNG", &shown), "image/png");
  EXPECT_TRUE(shown);
  EXPECT_EQ(safeContentType("metrics.csv", &shown), "text/plain; charset=utf-8");
  EXPECT_TRUE(shown);
  for (const char* risky : {"page.html", "x.svg", "a.js", "model.pt", "noext"}) {
    EXPECT_EQ(safeContentType(risky, &shown), "application/octet-stream") << risky;
    EXPECT_FALSE(shown) << risky;
  }
}

TEST(Artifacts, ADirectoryIsListedAndReadWithoutFollowingSymlinks) {
  std::string root = test::freshDir() + "/out";
  fs::create_directories(root + "/sub");
  std::ofstream(root + "/b.txt") << "hello";
  std::ofstream(root + "/sub/a.bin") << "0123456789";
  fs::create_symlink("/etc/passwd", root + "/pw");
  auto store = makeDirectoryStore();
  bool truncated = true;
  auto all = store->list(root, 10, &truncated);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(all[0].path, "b.txt");
  EXPECT_EQ(all[1].path, "sub/a.bin");
  EXPECT_EQ(all[1].size, 10u);
  store->list(root, 1, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(store->read(root, "sub/a.bin", 3, 4), "3456");
  EXPECT_EQ(store->read(root, "sub/a.bin", 8, 100), "89");
  try {
    store->read(root, "pw", 0, 10);
    FAIL() << "a symlink was followed";
  } catch (const ArtifactError& e) {
    EXPECT_EQ(e.status, 404);
  }
  try {
    store->stat(root, "../out/b.txt");
    FAIL() << "a path out of the root was taken";
  } catch (const ArtifactError& e) {
    EXPECT_EQ(e.status, 400);
  }
  EXPECT_THROW(store->stat(root, "sub"), ArtifactError);  // a directory is not an output file
  EXPECT_TRUE(store->list(root + "/missing", 10, &truncated).empty());
}

}  // namespace
}  // namespace trainyard::artifacts

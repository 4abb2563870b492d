// Helpers shared by the unit tests: a fresh directory per test.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace trainyard::test {

inline std::string freshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string leaf = std::string("ty-") + info->test_suite_name() + "-" + info->name() + "-XXXXXX";
  for (auto& c : leaf)
    if (c == '/') c = '_';  // parameterised test names contain '/'
  std::string path = (std::filesystem::temp_directory_path() / leaf).string();
  if (!mkdtemp(path.data())) throw std::runtime_error("mkdtemp failed for " + path);
  return path;
}

}  // namespace trainyard::test

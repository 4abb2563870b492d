// A fresh data dir, its SQLite store and a local backend whose processes die
// with the test: what the controller tests run real jobs on.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "control/job_controller.h"
#include "store/store.h"
#include "test_util.h"

namespace trainyard::test {

struct LocalHarness : ::testing::Test {
  void SetUp() override {
    dir = freshDir();
    st = store::openStore(dir + "/data");
    backend::LocalBackendOptions bo;
    bo.tie_to_parent = true;
    be = backend::makeLocalBackend(bo);
    co.data_dir = dir + "/data";
    // Long enough that a loaded machine still delivers SIGTERM before any
    // escalation; the escalation itself is tested with its own short grace.
    co.grace = std::chrono::milliseconds(3000);
  }
  std::string dir;
  std::unique_ptr<store::Store> st;
  std::unique_ptr<backend::Backend> be;
  control::ControllerOptions co;
};

}  // namespace trainyard::test

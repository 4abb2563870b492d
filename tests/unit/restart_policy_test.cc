#include "control/restart_policy.h"

#include <gtest/gtest.h>

using namespace trainyard::control;
using trainyard::spec::RestartPolicy;

TEST(RestartPolicy, NeverFailsAtOnce) {
  auto o = afterFailure(RestartPolicy::Never, 0, 6, 1, "Error");
  EXPECT_FALSE(o.restart);
  EXPECT_EQ(o.reason, "Error");
}

TEST(RestartPolicy, OnFailureRestartsUpToBackoffLimit) {
  EXPECT_TRUE(afterFailure(RestartPolicy::OnFailure, 0, 2, 1, "Error").restart);
  EXPECT_TRUE(afterFailure(RestartPolicy::OnFailure, 1, 2, 1, "Error").restart);
  auto o = afterFailure(RestartPolicy::OnFailure, 2, 2, 1, "Error");
  EXPECT_FALSE(o.restart);
  EXPECT_EQ(o.reason, "BackoffLimitExceeded");
  EXPECT_FALSE(afterFailure(RestartPolicy::OnFailure, 0, 0, 137, "Signaled").restart);
}

TEST(RestartPolicy, ExitCodeSplitsPermanentAndRetryable) {
  for (int code : {1, 2, 64, 127}) {
    auto o = afterFailure(RestartPolicy::ExitCode, 0, 5, code, "Error");
    EXPECT_FALSE(o.restart) << code;
    EXPECT_EQ(o.reason, "PermanentError");
  }
  for (int code : {128, 137, 143, 255}) EXPECT_TRUE(afterFailure(RestartPolicy::ExitCode, 0, 5, code, "Error").restart) << code;
  EXPECT_EQ(afterFailure(RestartPolicy::ExitCode, 5, 5, 137, "Signaled").reason, "BackoffLimitExceeded");
}

TEST(RestartPolicy, EffectiveExitCode) {
  EXPECT_EQ(effectiveExitCode(3, std::nullopt), 3);
  EXPECT_EQ(effectiveExitCode(std::nullopt, 9), 137);
  EXPECT_EQ(effectiveExitCode(std::nullopt, 15), 143);
}

// The Podman runner's pure parts: a replica in, podman's arguments out;
// podman's exit and last words in, a reason out.
#include <gtest/gtest.h>

#include <algorithm>

#include "backend/container/podman.h"

namespace trainyard::backend::podman {
namespace {

bool has(const std::vector<std::string>& a, const std::string& s) { return std::find(a.begin(), a.end(), s) != a.end(); }

TEST(Podman, ARunCarriesTheReplicasImageCommandMountsEnvAndLimits) {
  ReplicaLaunch r;
  r.name = "worker-1";
  r.image = "localhost/train:1";
  r.argv = {"python3", "train.py", "--epochs", "2"};
  r.working_dir = "/home/ana/proj";
  r.mounts = {{"/srv/data", "/data", true}};
  r.resources.cpu_millis = 1500;
  r.resources.memory_bytes = int64_t{2} << 30;
  r.gpu_ids = {3};
  Options o;
  o.podman = "/usr/bin/podman";
  o.runtime = "runc";
  o.nofile = 20000, o.nproc = 32768;
  ContainerRun run{"u1", 2, &r, {"RANK", "SECRET_TOKEN"}, {{"/d/outputs/j", "/d/outputs/j", false}}};
  auto a = runArgs(o, run);
  EXPECT_EQ(a[0], "/usr/bin/podman");
  EXPECT_EQ(a[1], "run");
  EXPECT_TRUE(has(a, "--runtime=runc"));
  EXPECT_TRUE(has(a, "--name=trainyard-u1-worker-1-2"));
  EXPECT_TRUE(has(a, "--label=trainyard.dev/job-uid=u1"));
  EXPECT_TRUE(has(a, "--pull=missing"));  // IfNotPresent, the default
  EXPECT_TRUE(has(a, "--network=host") && has(a, "--init"));
  EXPECT_TRUE(has(a, "--ulimit=nofile=20000:20000") && has(a, "--ulimit=nproc=32768:32768"));
  EXPECT_TRUE(has(a, "--volume=/home/ana/proj:/home/ana/proj") && has(a, "--workdir=/home/ana/proj"));
  EXPECT_TRUE(has(a, "--volume=/srv/data:/data:ro") && has(a, "--volume=/d/outputs/j:/d/outputs/j"));
  EXPECT_TRUE(has(a, "--env=SECRET_TOKEN"));  // by name: no value on the command line
  EXPECT_TRUE(std::none_of(a.begin(), a.end(), [](const auto& s) { return s.find("SECRET_TOKEN=") != std::string::npos; }));
  EXPECT_TRUE(has(a, "--cpus=1.500") && has(a, "--memory=2147483648") && has(a, "--memory-swap=2147483648"));
  EXPECT_TRUE(has(a, "--device=nvidia.com/gpu=3"));
  EXPECT_FALSE(has(a, "--cap-drop=all"));  // not root-run-as: rootless, as this user
  // The command replaces the entrypoint; the rest follows the image.
  auto image = std::find(a.begin(), a.end(), "localhost/train:1");
  ASSERT_NE(image, a.end());
  EXPECT_TRUE(has(a, "--entrypoint=python3"));
  EXPECT_EQ(std::vector<std::string>(image + 1, a.end()), (std::vector<std::string>{"train.py", "--epochs", "2"}));
}

TEST(Podman, ArgsAloneKeepTheEntrypointAndARootServerRunsItAsItsUser) {
  ReplicaLaunch r;
  r.name = "worker-0";
  r.image = "img";
  r.argv = {"--epochs", "2"};
  r.image_entrypoint = true;
  r.image_pull_policy = "Never";
  Options o;
  o.run_uid = 990, o.run_gid = 990, o.run_groups = {44};
  auto a = runArgs(o, ContainerRun{"u", 0, &r, {}, {}});
  EXPECT_TRUE(std::none_of(a.begin(), a.end(), [](const auto& s) { return s.starts_with("--entrypoint"); }));
  EXPECT_EQ(a[a.size() - 3], "img");
  EXPECT_EQ(a.back(), "2");
  EXPECT_TRUE(has(a, "--pull=never"));
  EXPECT_TRUE(has(a, "--user=990:990") && has(a, "--group-add=44"));
  EXPECT_TRUE(has(a, "--cap-drop=all") && has(a, "--security-opt=no-new-privileges"));
  EXPECT_EQ(pullPolicy("Always"), "always");
}

TEST(Podman, PodmansOwnFailuresAreToldFromTheCommands) {
  auto pull = startFailure(125, "Trying to pull x...\nError: initializing source docker://x:1: pinging registry\n");
  ASSERT_TRUE(pull);
  EXPECT_EQ(pull->first, "ImagePullFailed");
  EXPECT_EQ(pull->second, "initializing source docker://x:1: pinging registry");
  EXPECT_EQ(startFailure(125, "Error: localhost/nope:1: image not known\n")->first, "ImagePullFailed");
  auto runtime = startFailure(126, "Error: runc: runc create failed: unable to start container process\n");
  ASSERT_TRUE(runtime);
  EXPECT_EQ(runtime->first, "ContainerError");
  EXPECT_FALSE(startFailure(1, "Error: my program failed\n"));  // the command's own exit
  EXPECT_FALSE(startFailure(125, "the command exited 125 by itself\n"));
  EXPECT_FALSE(startFailure(137, ""));
}

}  // namespace
}  // namespace trainyard::backend::podman

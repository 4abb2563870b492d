// The slurm backend's pure parts: what Slurm prints, read; what sbatch is given.
#include <gtest/gtest.h>

#include <csignal>

#include "backend/slurm/batch.h"
#include "backend/slurm/slurm_state.h"

namespace trainyard::backend::slurm {
namespace {

TEST(SlurmState, SqueueGivesTrainyardsJobsOnly) {
  auto jobs = parseSqueue(
      "7|trainyard-u1-0|PENDING|Resources||N/A|N/A\n"
      "8|somebody-else|RUNNING|None|node1|2026-11-29T21:04:17|Unknown\n"
      "9|trainyard-u2-3|NODE_FAIL|NodeDown|node[1-2]|2026-11-29T21:04:17|2026-11-29T21:05:17\n");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, "7");
  EXPECT_EQ(jobs[0].reason, "Resources");
  EXPECT_EQ(jobs[0].start, 0);
  EXPECT_EQ(jobs[1].nodes, "node[1-2]");
  EXPECT_EQ(jobs[1].end - jobs[1].start, 60);
  EXPECT_THROW(parseSqueue("squeue: error: Unable to contact slurm controller"), std::runtime_error);
  EXPECT_THROW(parseSqueue("1|trainyard-a-0|RUNNING"), std::runtime_error);
  EXPECT_TRUE(parseSqueue("").empty());
  auto cmd = squeueCommand();
  EXPECT_EQ(cmd[0], "squeue");
  EXPECT_NE(std::find(cmd.begin(), cmd.end(), "--states=all"), cmd.end());
}

TEST(SlurmState, SinfoJsonGivesSchedulableNodesOfThePartition) {
  const char* text = R"J({"nodes": [
      {"name": "node1", "cpus": 4, "real_memory": 2048, "state": "idle", "state_flags": [], "partitions": ["gpu"],
       "gres": "gpu:a100:2(S:0)", "features": "ib,fast"},
      {"name": "node2", "cpus": 2, "real_memory": 1024, "state": "idle", "state_flags": ["DRAIN"], "partitions": ["gpu", "cpu"]},
      {"name": "node3", "cpus": 2, "real_memory": 1024, "state": "down", "state_flags": [], "partitions": ["cpu"]}]})J";
  auto all = parseSinfo(text, "");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].allocatable.cpu_millis, 4000);
  EXPECT_EQ(all[0].allocatable.memory_bytes, int64_t{2048} << 20);
  EXPECT_EQ(all[0].allocatable.gpu, 2);
  EXPECT_EQ(all[0].labels.at("feature.ib"), "true");
  EXPECT_TRUE(all[0].schedulable);
  EXPECT_FALSE(all[1].schedulable);  // drained
  EXPECT_FALSE(all[2].schedulable);  // down
  auto gpu = parseSinfo(text, "gpu");
  ASSERT_EQ(gpu.size(), 2u);
  EXPECT_EQ(gpu[1].name, "node2");
}

TEST(SlurmState, TasksPerNodeAndNodeAddresses) {
  EXPECT_EQ(parseTasksPerNode("2(x3),1"), (std::vector<int>{2, 2, 2, 1}));
  EXPECT_EQ(parseTasksPerNode("4"), (std::vector<int>{4}));
  EXPECT_TRUE(parseTasksPerNode("2(x").empty());
  EXPECT_TRUE(parseTasksPerNode("1(x999999999)").empty());
  auto addrs = parseNodeAddrs("NodeName=node1 Arch=x86_64 NodeAddr=10.0.0.5 NodeHostName=n1\n"
                              "NodeName=node2 Arch=x86_64 CoresPerSocket=1\n");
  ASSERT_EQ(addrs.size(), 2u);
  EXPECT_EQ(addrs[0], (std::pair<std::string, std::string>{"node1", "10.0.0.5"}));
  EXPECT_EQ(addrs[1].second, "node2");  // no NodeAddr: the name is the address
}

TEST(SlurmState, AJobsEndSaysHowReplicasWithoutARecordEnded) {
  ReplicaStatus r;
  SlurmJob job{"12", "trainyard-u-0", "NODE_FAIL", "None", "node2", 0, 0};
  endedWithoutRecord(&job, r);
  EXPECT_EQ(r.phase, ReplicaPhase::Exited);
  EXPECT_EQ(r.reason, "NodeFail");
  EXPECT_EQ(r.signal, SIGKILL);
  job.state = "OUT_OF_MEMORY";
  endedWithoutRecord(&job, r);
  EXPECT_EQ(r.reason, "OOMKilled");
  EXPECT_EQ(r.exit_code, 137);
  EXPECT_FALSE(r.signal.has_value());
  job.state = "TIMEOUT";
  endedWithoutRecord(&job, r);
  EXPECT_EQ(r.reason, "DeadlineExceeded");
  endedWithoutRecord(nullptr, r);
  EXPECT_EQ(r.reason, "Lost");
  EXPECT_TRUE(isActive("PENDING") && isActive("COMPLETING") && !isActive("CANCELLED"));
}

PlacedJob gang(int replicas) {
  PlacedJob job;
  job.uid = "u-9";
  job.name = "ddp";
  job.attempt = 2;
  for (int i = 0; i < replicas; ++i) {
    ReplicaLaunch r;
    r.name = i == 0 ? "master-0" : "worker-" + std::to_string(i - 1);
    r.argv = {"python3", "train.py"};
    r.resources.cpu_millis = 1500;
    r.resources.memory_bytes = int64_t{3} << 30;
    job.replicas.push_back(r);
  }
  return job;
}

bool has(const std::vector<std::string>& args, const std::string& a) {
  return std::find(args.begin(), args.end(), a) != args.end();
}

TEST(SlurmBatch, AGangOfOneShapeIsOneHomogeneousJob) {
  PlacedJob job = gang(4);
  for (auto& r : job.replicas) r.resources.gpu = 1;
  SlurmOptions o;
  o.partition = "batch";
  auto args = sbatchArgs(job, o, "/shared/logs/u-9", "/shared/logs/u-9/slurm-2.sh");
  EXPECT_TRUE(has(args, "--job-name=trainyard-u-9-2"));
  EXPECT_TRUE(has(args, "--ntasks=4"));
  EXPECT_TRUE(has(args, "--cpus-per-task=2"));      // 1.5 CPUs: whole CPUs
  EXPECT_TRUE(has(args, "--mem-per-cpu=1536M"));    // 3 GiB over 2 CPUs
  EXPECT_TRUE(has(args, "--gpus-per-task=1"));
  EXPECT_TRUE(has(args, "--partition=batch"));
  EXPECT_TRUE(has(args, "--no-requeue"));
  EXPECT_EQ(args.back(), "/shared/logs/u-9/slurm-2.sh");
  EXPECT_FALSE(has(args, "--nodes=4"));
  job.spread = true;
  job.slurm.partition = "gpu";  // the spec's over the server's
  job.deadline_seconds = 600;
  o.run_uid = 1001, o.run_gid = 1001;
  args = sbatchArgs(job, o, "/l", "/l/s.sh");
  EXPECT_TRUE(has(args, "--nodes=4") && has(args, "--ntasks-per-node=1"));
  EXPECT_TRUE(has(args, "--partition=gpu"));
  EXPECT_TRUE(has(args, "--time=12") && has(args, "--signal=TERM@60"));
  EXPECT_TRUE(has(args, "--uid=1001"));
  job.spread = false;
  job.slurm.nodes = 2, job.slurm.tasks_per_node = 2;
  args = sbatchArgs(job, o, "/l", "/l/s.sh");
  EXPECT_TRUE(has(args, "--nodes=2") && has(args, "--ntasks-per-node=2"));
}

TEST(SlurmBatch, ThePlanListsTasksInOrder) {
  PlacedJob job = gang(2);
  auto plan = planFor(job, "/l", "/opt/trainyard");
  ASSERT_EQ(plan["tasks"].size(), 2u);
  EXPECT_EQ(plan["tasks"][1]["name"], "worker-0");
  EXPECT_EQ(plan["tasks"][1]["log"], "/l/worker-0.attempt-2.log");
  EXPECT_EQ(plan["components"][0]["cpusPerTask"], 2);
  EXPECT_FALSE(plan.contains("launcher"));
  EXPECT_EQ(planReplicas(plan).size(), 2u);
  EXPECT_EQ(batchScript("/opt/it's/trainyard", "/l/p.json"),
            "#!/bin/sh\n# Made by trainyard: the batch step binds the peers' addresses and starts the replicas.\n"
            "exec '/opt/it'\\''s/trainyard' __slurm-batch '/l/p.json'\n");
}

TEST(SlurmBatch, RolesOfDifferentShapesAreComponentsOfAHeterogeneousJob) {
  PlacedJob job = gang(4);  // master-0, worker-0..2
  job.replicas[0].resources = {500, int64_t{1} << 30, 0};   // a light master
  job.replicas[3].resources = {4000, int64_t{8} << 30, 1};  // and a heavy last worker
  job.slurm.partition = "gpu";
  Layout l = layoutOf(job);
  ASSERT_EQ(l.components.size(), 3u);
  EXPECT_EQ(l.components[0].ntasks, 1);
  EXPECT_EQ(l.components[1].ntasks, 2);
  EXPECT_EQ(l.components[2].ntasks, 1);
  EXPECT_EQ(l.ntasks(), 4);
  auto args = sbatchArgs(job, {}, "/l", "/l/s.sh");
  ASSERT_EQ(std::count(args.begin(), args.end(), ":"), 2);
  // Component by component, in order, each with its own shape and partition.
  auto first = std::find(args.begin(), args.end(), ":"), second = std::find(first + 1, args.end(), ":");
  std::vector<std::string> c0(args.begin(), first), c1(first + 1, second), c2(second + 1, args.end());
  EXPECT_TRUE(has(c0, "--ntasks=1") && has(c0, "--cpus-per-task=1") && has(c0, "--mem-per-cpu=1024M"));
  EXPECT_TRUE(has(c0, "--job-name=trainyard-u-9-2") && has(c0, "--partition=gpu"));
  EXPECT_TRUE(has(c1, "--ntasks=2") && has(c1, "--cpus-per-task=2") && has(c1, "--partition=gpu"));
  EXPECT_FALSE(has(c1, "--job-name=trainyard-u-9-2"));
  EXPECT_TRUE(has(c2, "--ntasks=1") && has(c2, "--cpus-per-task=4") && has(c2, "--mem-per-cpu=2048M") &&
              has(c2, "--gpus-per-task=1"));
  EXPECT_EQ(args.back(), "/l/s.sh");
  auto plan = planFor(job, "/l", "/t");
  EXPECT_EQ(plan["tasks"].size(), 4u);
  EXPECT_EQ(plan["components"].size(), 3u);
  // A layout by hand names one shape: it cannot lay out three.
  job.slurm.nodes = 2;
  try {
    sbatchArgs(job, {}, "/l", "/l/s.sh");
    FAIL() << "no error";
  } catch (const BackendError& e) {
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string(e.what()).find("3 shapes"), std::string::npos) << e.what();
  }
}

TEST(SlurmBatch, AnMpiJobsSlotsAreTheTasksAndItsLauncherTheBatchStep) {
  PlacedJob job;
  job.uid = "u-1";
  job.attempt = 1;
  job.slots_per_worker = 2;
  ReplicaLaunch launcher;
  launcher.name = "launcher-0";
  launcher.argv = {"mpirun", "-np", "4", "prog"};
  launcher.resources.cpu_millis = 100;
  job.replicas.push_back(launcher);
  for (int i = 0; i < 2; ++i) {
    ReplicaLaunch w;
    w.name = "worker-" + std::to_string(i);
    w.run = false;
    w.resources = {2000, int64_t{2} << 30, 0};  // a worker's share: 1 CPU and 1 GiB per slot
    job.replicas.push_back(w);
  }
  Layout l = layoutOf(job);
  ASSERT_EQ(l.components.size(), 1u);
  EXPECT_EQ(l.components[0].ntasks, 4);
  EXPECT_EQ(l.components[0].cpus_per_task, 1);
  EXPECT_EQ(l.components[0].mem_per_cpu_mib, 1024);
  EXPECT_EQ(l.launcher, 0);
  EXPECT_TRUE(l.tasks.empty());
  job.spread = true;  // a worker per node, as its pods would be
  auto args = sbatchArgs(job, {}, "/l", "/l/s.sh");
  EXPECT_TRUE(has(args, "--ntasks=4") && has(args, "--nodes=2") && has(args, "--ntasks-per-node=2"));
  auto plan = planFor(job, "/l", "/t");
  EXPECT_TRUE(plan["tasks"].empty());
  EXPECT_EQ(plan["launcher"]["name"], "launcher-0");
  ASSERT_EQ(planReplicas(plan).size(), 1u);
  // Workers of different shapes cannot share one slot shape.
  job.replicas[2].resources.cpu_millis = 4000;
  EXPECT_THROW(layoutOf(job), BackendError);
}

TEST(SlurmState, AHeterogeneousJobsComponentsAreOneJob) {
  auto jobs = parseSqueue(
      "12+0|trainyard-u-1-0|RUNNING|None|node1|2026-01-01T00:00:00|N/A\n"
      "12+1|trainyard-u-1-0|NODE_FAIL|NodeDown|node[2-3]|2026-01-01T00:00:01|N/A\n"
      "13|trainyard-u-2-0|PENDING|Priority||N/A|N/A\n");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, "12");
  EXPECT_EQ(jobs[0].state, "NODE_FAIL");  // a failed component fails the job
  EXPECT_EQ(jobs[0].nodes, "node1,node[2-3]");
  EXPECT_EQ(jobs[1].id, "13");
}

}  // namespace
}  // namespace trainyard::backend::slurm

// How a placed job becomes pods (pure: no cluster needed).
#include <gtest/gtest.h>

#include "backend/kubernetes/pods.h"
#include "backend/kubernetes/tenancy.h"

namespace trainyard::backend::k8s {
namespace {
using json = nlohmann::json;

PlacedJob jobWith(ReplicaLaunch r) {
  PlacedJob job;
  job.uid = "u-1";
  job.name = "fmnist";
  job.attempt = 2;
  job.replicas = {std::move(r)};
  return job;
}

ReplicaLaunch worker() {
  ReplicaLaunch r;
  r.name = "worker-0";
  r.role = "worker";
  r.argv = {"/usr/bin/python3", "train.py"};
  r.image = "localhost/img:1";
  r.resources.cpu_millis = 1500;
  r.resources.memory_bytes = 1 << 30;
  return r;
}

TEST(Pods, VolumesBecomeHostPathMountsOfTheMainContainer) {
  ReplicaLaunch r = worker();
  r.mounts = {{"/usr", "/usr", true}, {"/srv/data", "/data", false}};
  PlacedJob job = jobWith(r);
  job.files = {{"hostfile", "a slots=1\n"}};
  json pod = podFor(job, job.replicas[0], 0, {});
  const json& spec = pod["spec"];
  ASSERT_EQ(spec["volumes"].size(), 3u);
  EXPECT_EQ(spec["volumes"][0]["hostPath"]["path"], "/usr");
  EXPECT_EQ(spec["volumes"][1]["hostPath"]["path"], "/srv/data");
  EXPECT_EQ(spec["volumes"][2]["configMap"]["name"], configMapName(job));
  const json& mounts = spec["containers"][0]["volumeMounts"];
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0], (json{{"name", "trainyard-volume-0"}, {"mountPath", "/usr"}, {"readOnly", true}}));
  EXPECT_EQ(mounts[1], (json{{"name", "trainyard-volume-1"}, {"mountPath", "/data"}}));
  EXPECT_EQ(mounts[2]["mountPath"], kConfigDir);
  EXPECT_EQ(spec["containers"][0]["resources"]["requests"]["cpu"], "1500m");
  EXPECT_EQ(spec["containers"][0]["resources"]["limits"]["memory"], std::to_string(1 << 30));
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_EQ(spec["schedulerName"], "trainyard");
  EXPECT_EQ(pod["metadata"]["name"], "fmnist-worker-0-2");
}

TEST(Pods, TheTemplatesVolumesAndSidecarsAreKeptBesideOurs) {
  ReplicaLaunch r = worker();
  r.mounts = {{"/usr", "/usr", true}};
  r.pod_template = json{{"spec",
                         {{"volumes", json::array({{{"name", "ckpt"}, {"emptyDir", json::object()}}})},
                          {"containers", json::array({{{"name", "log-shipper"}, {"image", "busybox"}},
                                                      {{"name", "pytorch"},
                                                       {"image", "ignored"},
                                                       {"volumeMounts", json::array({{{"name", "ckpt"}, {"mountPath", "/ckpt"}}})}}})}}}}
                       .dump();
  r.main_container = 1;
  PlacedJob job = jobWith(r);
  json pod = podFor(job, job.replicas[0], 0, {});
  const json& spec = pod["spec"];
  ASSERT_EQ(spec["volumes"].size(), 2u);
  EXPECT_EQ(spec["volumes"][0]["name"], "ckpt");
  EXPECT_EQ(spec["containers"][0], (json{{"name", "log-shipper"}, {"image", "busybox"}}));  // untouched
  const json& main = spec["containers"][1];
  EXPECT_EQ(main["image"], "localhost/img:1");
  ASSERT_EQ(main["volumeMounts"].size(), 2u);
  EXPECT_EQ(main["volumeMounts"][0]["mountPath"], "/ckpt");
  EXPECT_EQ(main["volumeMounts"][1]["mountPath"], "/usr");
  EXPECT_EQ(pod["metadata"]["annotations"]["trainyard.dev/container"], "pytorch");
}

TEST(Pods, AReplicaWithoutAnImageIsAPermanentError) {
  ReplicaLaunch r = worker();
  r.image.clear();
  PlacedJob job = jobWith(r);
  try {
    podFor(job, job.replicas[0], 0, {});
    FAIL() << "no error";
  } catch (const BackendError& e) {
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string(e.what()).find("image"), std::string::npos);
  }
}

TEST(Pods, KubeflowJobsPodsCarryTheTrainingOperatorsLabels) {
  ReplicaLaunch master = worker();
  master.name = "master-0";
  master.role = "master";
  PlacedJob job = jobWith(master);
  job.replicas.push_back(worker());
  json plain = podFor(job, job.replicas[0], 0, {});
  EXPECT_FALSE(plain["metadata"]["labels"].contains("training.kubeflow.org/job-name"));
  EXPECT_EQ(plain["metadata"]["labels"]["trainyard.dev/job-role"], "master");
  job.kind = "PyTorchJob";
  json m = podFor(job, job.replicas[0], 0, {})["metadata"]["labels"];
  json w = podFor(job, job.replicas[1], 1, {})["metadata"]["labels"];
  EXPECT_EQ(m["training.kubeflow.org/operator-name"], "pytorchjob-controller");
  EXPECT_EQ(m["training.kubeflow.org/job-name"], "fmnist");
  EXPECT_EQ(m["training.kubeflow.org/replica-type"], "master");
  EXPECT_EQ(m["training.kubeflow.org/job-role"], "master");
  // With a master, worker-0 is not rank 0.
  EXPECT_EQ(w["training.kubeflow.org/replica-type"], "worker");
  EXPECT_EQ(w["training.kubeflow.org/replica-index"], "0");
  EXPECT_FALSE(w.contains("training.kubeflow.org/job-role"));
  EXPECT_FALSE(w.contains("trainyard.dev/job-role"));
}

TEST(Pods, AResourcesJobIsOwnedByItInItsOwnNamespaceOnly) {
  PlacedJob job = jobWith(worker());
  EXPECT_TRUE(ownerReferencesFor(job, "team").empty());  // not from a resource
  job.labels = {{kOwnerKindLabel, "PyTorchJob.v1.kubeflow.org"}, {kOwnerNameLabel, "mnist"},
                {kOwnerUidLabel, "3f0e"}, {kOwnerNamespaceLabel, "team"}};
  json owners = ownerReferencesFor(job, "team");
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0]["apiVersion"], "kubeflow.org/v1");
  EXPECT_EQ(owners[0]["kind"], "PyTorchJob");
  EXPECT_EQ(owners[0]["name"], "mnist");
  EXPECT_EQ(owners[0]["uid"], "3f0e");
  EXPECT_EQ(owners[0]["controller"], true);
  // Owners cannot live in another namespace.
  EXPECT_TRUE(ownerReferencesFor(job, "trainyard").empty());
  job.labels[kOwnerKindLabel] = "garbled";
  EXPECT_TRUE(ownerReferencesFor(job, "team").empty());
}

}  // namespace
}  // namespace trainyard::backend::k8s

namespace trainyard::backend::k8s {
namespace {

TEST(Tenancy, ANamespaceIsATenantWithItsUserAndQueue) {
  // The server's own namespace: the administrator's, names as they are.
  Tenant own = tenantOf("trainyard", "mnist", "trainyard", {});
  EXPECT_EQ(own.job_name, "mnist");
  EXPECT_EQ(own.user, "");
  EXPECT_EQ(own.queue, "");
  // Another namespace: its name is its user, unless a label says otherwise; its queue label.
  Tenant alice = tenantOf("alice", "mnist", "trainyard", {});
  EXPECT_EQ(alice.job_name, "alice-mnist");
  EXPECT_EQ(alice.user, "alice");
  Tenant team = tenantOf("vision", "mnist", "trainyard", {{kUserLabel, "carol"}, {kQueueLabel, "team-a"}});
  EXPECT_EQ(team.user, "carol");
  EXPECT_EQ(team.queue, "team-a");
  EXPECT_EQ(team.job_name, "vision-mnist");
  // Too long for a job name: refused with the reason, never truncated into another's name.
  Tenant longer = tenantOf(std::string(40, 'n'), std::string(30, 'm'), "trainyard", {});
  EXPECT_EQ(longer.job_name, "");
  EXPECT_NE(longer.error.find("longer than 63"), std::string::npos);
}

}  // namespace
}  // namespace trainyard::backend::k8s

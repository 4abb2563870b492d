// Roles in TrainJobs and the Kubeflow job formats, as users write them.
#include <gtest/gtest.h>

#include <algorithm>

#include "spec/parser.h"

using namespace trainyard::spec;

namespace {

LoadedSpec load(const std::string& text, std::vector<std::string> sets = {}) {
  return loadSpecString(text, "job.yaml", "/base", sets);
}

std::vector<std::pair<std::string, int>> roles(const TrainJobSpec& s) {
  std::vector<std::pair<std::string, int>> v;
  for (const auto& r : s.roles) v.emplace_back(r.name, r.replicas);
  return v;
}

bool hasWarning(const LoadedSpec& l, const std::string& needle) {
  return std::any_of(l.warnings.begin(), l.warnings.end(),
                     [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

std::string errorOf(const std::string& text) {
  try {
    load(text);
  } catch (const SpecError& e) {
    return e.what();
  }
  return "(accepted)";
}

const char* kHead = "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: d}\nspec:\n";

const char* kPyTorchJob = R"(apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: mnist
  namespace: kubeflow
spec:
  runPolicy:
    backoffLimit: 3
    activeDeadlineSeconds: 600
    cleanPodPolicy: None
    schedulingPolicy: {scheduleTimeoutSeconds: 45}
  pytorchReplicaSpecs:
    Worker:
      replicas: 3
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: pytorch
              image: kubeflow/pytorch-dist-mnist:latest
              command: [python3, /opt/mnist.py]
              args: [--backend, gloo]
              env:
                - {name: A, value: "1"}
                - name: POD_IP
                  valueFrom: {fieldRef: {fieldPath: status.podIP}}
              resources:
                requests: {cpu: 500m}
                limits: {cpu: "1", memory: 1Gi, nvidia.com/gpu: 1, ephemeral-storage: 1Gi}
              volumeMounts: [{name: data, mountPath: /data}]
          volumes: [{name: data, emptyDir: {}}]
          nodeSelector: {gpu: "true"}
    Master:
      replicas: 1
      restartPolicy: ExitCode
      template:
        spec:
          containers:
            - name: pytorch
              image: kubeflow/pytorch-dist-mnist:latest
              command: [python3, /opt/mnist.py]
            - name: sidecar
              image: busybox
)";

}  // namespace

TEST(Roles, ReplicasShorthandPerFramework) {
  EXPECT_EQ(roles(load(std::string(kHead) + "  framework: pytorch\n  replicas: 4\n  command: [x]\n").job),
            (std::vector<std::pair<std::string, int>>{{"master", 1}, {"worker", 3}}));
  EXPECT_EQ(roles(load(std::string(kHead) + "  framework: tensorflow\n  replicas: 3\n  command: [x]\n").job),
            (std::vector<std::pair<std::string, int>>{{"worker", 3}}));
  EXPECT_EQ(roles(load(std::string(kHead) + "  framework: mpi\n  replicas: 2\n  command: [mpirun, x]\n").job),
            (std::vector<std::pair<std::string, int>>{{"launcher", 1}, {"worker", 2}}));
  auto s = load(std::string(kHead) + "  framework: pytorch\n  replicas: 2\n  command: [x]\n", {"spec.replicas=1"}).job;
  EXPECT_EQ(roles(s), (std::vector<std::pair<std::string, int>>{{"master", 1}}));
  EXPECT_EQ(s.primaryReplica(), "master-0");
}

TEST(Roles, PerRoleFieldsOverrideTheDefaults) {
  auto s = load(std::string(kHead) +
                "  framework: tensorflow\n  command: [python3, train.py]\n  env: {A: '1'}\n"
                "  resources: {cpu: 2}\n  roles:\n    worker: {replicas: 2}\n"
                "    ps: {command: [python3, ps.py], env: {B: '2'}, resources: {memory: 1Gi}}\n"
                "    chief: {}\n")
               .job;
  EXPECT_EQ(roles(s), (std::vector<std::pair<std::string, int>>{{"chief", 1}, {"ps", 1}, {"worker", 2}}));
  const auto* ps = s.role("ps");
  EXPECT_EQ(ps->command[1], "ps.py");
  EXPECT_EQ(ps->env.size(), 2u);
  EXPECT_EQ(ps->resources.cpu_millis, 2000);  // inherited
  EXPECT_EQ(ps->resources.memory_bytes, 1LL << 30);
  EXPECT_EQ(s.role("worker")->command[1], "train.py");
  EXPECT_EQ(s.primaryReplica(), "chief-0");
  EXPECT_EQ(s.totalRequest().cpu_millis, 8000);
}

TEST(Roles, Errors) {
  std::string h = kHead;
  EXPECT_NE(errorOf(h + "  framework: pytorch\n  command: [x]\n  roles:\n    chief: {}\n")
                .find("job.yaml:8:5: spec.roles.chief: 'chief' is not a role of framework pytorch (expected one of: master, worker)"),
            std::string::npos);
  EXPECT_NE(errorOf(h + "  framework: pytorch\n  command: [x]\n  roles:\n    master: {replicas: 2}\n")
                .find("at most one master"), std::string::npos);
  EXPECT_NE(errorOf(h + "  framework: mpi\n  command: [x]\n  roles:\n    worker: {replicas: 2}\n")
                .find("exactly one launcher"), std::string::npos);
  EXPECT_NE(errorOf(h + "  framework: pytorch\n  command: [x]\n  replicas: 2\n  roles: {master: {}}\n")
                .find("either replicas"), std::string::npos);
  EXPECT_NE(errorOf(h + "  framework: tensorflow\n  roles:\n    worker: {replicas: 2}\n")
                .find("spec.roles.worker.command: missing required field 'command'"), std::string::npos);
  EXPECT_NE(errorOf(h + "  framework: tensorflow\n  command: [x]\n  successPolicy: Most\n")
                .find("expected Default or AllWorkers"), std::string::npos);
  EXPECT_NE(errorOf(h + "  framework: tensorflow\n  command: [x]\n  roles:\n    worker: {replicas: 0}\n")
                .find("spec.roles.worker.replicas: expected an integer in [1, 1024]"), std::string::npos);
}

TEST(Kubeflow, PyTorchJobTranslatesRolesResourcesPoliciesAndWarns) {
  auto l = load(kPyTorchJob);
  const auto& s = l.job;
  EXPECT_EQ(l.kind, "PyTorchJob");
  EXPECT_EQ(s.framework, "pytorch");
  EXPECT_EQ(s.name, "mnist");
  EXPECT_EQ(roles(s), (std::vector<std::pair<std::string, int>>{{"master", 1}, {"worker", 3}}));
  EXPECT_EQ(s.backoff_limit, 3);
  EXPECT_EQ(s.active_deadline_seconds, 600);
  EXPECT_EQ(s.start_timeout_seconds, 45);  // the gang's scheduling timeout
  EXPECT_EQ(s.restart_policy, RestartPolicy::ExitCode);  // the master's wins
  const auto* w = s.role("worker");
  EXPECT_EQ(w->command, (std::vector<std::string>{"python3", "/opt/mnist.py"}));
  EXPECT_EQ(w->args, (std::vector<std::string>{"--backend", "gloo"}));
  EXPECT_EQ(w->env, (std::vector<std::pair<std::string, std::string>>{{"A", "1"}}));
  EXPECT_EQ(w->resources.cpu_millis, 500);         // the request
  EXPECT_EQ(w->resources.memory_bytes, 1LL << 30); // the limit
  EXPECT_EQ(w->resources.gpu, 1);
  EXPECT_EQ(w->image, "kubeflow/pytorch-dist-mnist:latest");
  EXPECT_EQ(w->working_dir, "/base");
  EXPECT_TRUE(hasWarning(l, "job.yaml:5:3: metadata.namespace"));
  EXPECT_TRUE(hasWarning(l, "spec.runPolicy.cleanPodPolicy: None keeps pods"));
  EXPECT_TRUE(hasWarning(l, "containers[0].env[1].valueFrom: not available on the local backend"));
  EXPECT_TRUE(hasWarning(l, "limits.ephemeral-storage: resource ephemeral-storage is not managed"));
  // An emptyDir needs a cluster; a hostPath volume is mounted (the test below).
  EXPECT_TRUE(hasWarning(l, "containers[0].volumeMounts[0]: volume \"data\" is not a hostPath volume"));
  EXPECT_TRUE(w->volumes.empty());
  EXPECT_EQ(l.job.node_selector, (std::map<std::string, std::string>{{"gpu", "true"}}));  // applied by the scheduler
  EXPECT_TRUE(hasWarning(l, "spec.pytorchReplicaSpecs.Master.template.spec.containers[1]: only the pytorch container runs"));
}

TEST(Kubeflow, HostPathVolumesAndAnImageWithoutACommand) {
  auto l = load(R"(apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: hp}
spec:
  pytorchReplicaSpecs:
    Master:
      template:
        spec:
          volumes:
            - {name: data, hostPath: {path: /srv/data}}
            - {name: usr, hostPath: {path: /usr, type: Directory}}
          containers:
            - name: pytorch
              image: localhost/train:1
              imagePullPolicy: Never
              args: [--epochs, "2"]
              volumeMounts:
                - {name: data, mountPath: /data}
                - {name: usr, mountPath: /usr, readOnly: true}
)");
  const auto* m = l.job.role("master");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->command.empty());  // the image's entrypoint runs, with the args
  EXPECT_EQ(m->args, (std::vector<std::string>{"--epochs", "2"}));
  EXPECT_EQ(m->image_pull_policy, "Never");
  ASSERT_EQ(m->volumes.size(), 2u);
  EXPECT_EQ(m->volumes[0].host_path, "/srv/data");
  EXPECT_EQ(m->volumes[0].mount_path, "/data");
  EXPECT_FALSE(m->volumes[0].read_only);
  EXPECT_EQ(m->volumes[1].mount_path, "/usr");
  EXPECT_TRUE(m->volumes[1].read_only);
}

TEST(Kubeflow, TFJobAndMPIJob) {
  auto tf = load(R"(apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: tf}
spec:
  successPolicy: AllWorkers
  tfReplicaSpecs:
    PS: {replicas: 1, restartPolicy: Always, template: {spec: {containers: [{name: tensorflow, command: [ps]}]}}}
    Worker: {replicas: 2, template: {spec: {containers: [{name: tensorflow, command: [w], workingDir: sub}]}}}
    Evaluator: {template: {spec: {containers: [{name: tensorflow, command: [e]}]}}}
)");
  EXPECT_EQ(roles(tf.job), (std::vector<std::pair<std::string, int>>{{"ps", 1}, {"worker", 2}, {"evaluator", 1}}));
  EXPECT_EQ(tf.job.success_policy, "AllWorkers");
  EXPECT_EQ(tf.job.restart_policy, RestartPolicy::OnFailure);  // Always
  EXPECT_EQ(tf.job.role("worker")->working_dir, "/base/sub");
  EXPECT_EQ(tf.job.primaryReplica(), "ps-0");

  auto mpi = load(R"(apiVersion: kubeflow.org/v1
kind: MPIJob
metadata: {name: mpi}
spec:
  slotsPerWorker: 2
  mpiReplicaSpecs:
    Launcher: {replicas: 1, template: {spec: {containers: [{name: mpi, command: [mpirun, -np, "4", ./a]}]}}}
    Worker: {replicas: 2, template: {spec: {containers: [{name: mpi, command: [sshd], resources: {limits: {cpu: 2}}}]}}}
)");
  EXPECT_EQ(roles(mpi.job), (std::vector<std::pair<std::string, int>>{{"launcher", 1}, {"worker", 2}}));
  EXPECT_EQ(mpi.job.slots_per_worker, 2);
  EXPECT_EQ(mpi.job.role("worker")->resources.cpu_millis, 2000);  // reserved for mpirun's ranks
  EXPECT_TRUE(mpi.job.role("worker")->command.empty());
  EXPECT_TRUE(hasWarning(mpi, "MPI workers are slots"));
  EXPECT_EQ(mpi.job.primaryReplica(), "launcher-0");
}

TEST(Kubeflow, ErrorsNameThePath) {
  std::string base = R"(apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: x}
spec:
  pytorchReplicaSpecs:
    Master:
      template:
        spec:
          containers:
            - name: pytorch
)";
  EXPECT_NE(errorOf(base + "              command: [a]\n              resources: {limits: {memory: 2Gx}}\n")
                .find("job.yaml:12:44: spec.pytorchReplicaSpecs.Master.template.spec.containers[0].resources.limits.memory: "
                      "expected a memory quantity"), std::string::npos);
  EXPECT_NE(errorOf(base + "              args: [x]\n")
                .find("containers[0].command: missing required field 'command' (and no image whose entrypoint could run)"),
            std::string::npos);
  EXPECT_NE(errorOf(base + "              image: x\n              imagePullPolicy: Sometimes\n")
                .find("containers[0].imagePullPolicy: expected IfNotPresent, Never or Always, got \"Sometimes\""),
            std::string::npos);
  EXPECT_NE(errorOf(base + "              image: x\n              volumeMounts: [{name: nope, mountPath: /d}]\n")
                .find("containers[0].volumeMounts[0].name: no volume \"nope\" in spec.pytorchReplicaSpecs.Master.template.spec.volumes"),
            std::string::npos);
  EXPECT_NE(errorOf(std::string(R"(apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: x}
spec:
  pytorchReplicaSpecs:
    Chief: {template: {spec: {containers: [{command: [a]}]}}}
)")).find("job.yaml:6:5: spec.pytorchReplicaSpecs.Chief: unknown replica type 'Chief' for PyTorchJob"), std::string::npos);
  EXPECT_NE(errorOf("apiVersion: kubeflow.org/v1\nkind: XGBoostJob\nmetadata: {name: x}\nspec: {}\n")
                .find("XGBoostJob is not supported: Trainyard runs the training operator's PyTorchJob, TFJob and MPIJob"),
            std::string::npos);
  EXPECT_NE(errorOf("apiVersion: kubeflow.org/v1\nkind: Nonsense\nmetadata: {name: x}\nspec: {}\n")
                .find("expected PyTorchJob, TFJob or MPIJob"), std::string::npos);
  EXPECT_NE(errorOf("apiVersion: kubeflow.org/v1\nkind: MPIJob\nmetadata: {name: x}\nspec:\n  mpiReplicaSpecs:\n"
                    "    Worker: {replicas: 1, template: {spec: {containers: [{command: [a]}]}}}\n")
                .find("an MPIJob needs a Launcher"), std::string::npos);
  EXPECT_NE(errorOf("apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: x}\nspec:\n  runPolicy: {backoffLimit: -2}\n"
                    "  pytorchReplicaSpecs: {}\n")
                .find("spec.runPolicy.backoffLimit: expected an integer in [0, 1000]"), std::string::npos);
}

TEST(Kubeflow, RunPolicySuspendTtlMinAvailableAndElasticPolicy) {
  std::string text = kPyTorchJob;
  auto with = [&](const std::string& run_policy_extra, const std::string& spec_extra = "") {
    std::string t = text;
    t.replace(t.find("    backoffLimit: 3\n"), 0, run_policy_extra);
    t.replace(t.find("  pytorchReplicaSpecs:"), 0, spec_extra);
    return t;
  };
  auto l = load(with("    suspend: true\n    ttlSecondsAfterFinished: 120\n"));
  EXPECT_TRUE(l.job.suspend);
  EXPECT_EQ(l.job.ttl_seconds_after_finished, 120);
  EXPECT_FALSE(hasWarning(l, "suspend"));

  // schedulingPolicy.minAvailable: the gang is all four replicas.
  std::string sched = "    schedulingPolicy: {scheduleTimeoutSeconds: 45}\n";
  std::string t = with("");
  t.replace(t.find(sched), sched.size(), "    schedulingPolicy: {minAvailable: 2, queue: team-a, priorityClass: high}\n");
  l = load(t);
  EXPECT_EQ(l.job.queue, "team-a");
  EXPECT_EQ(l.job.priority_class, "high");  // its value is the priority, at submission
  EXPECT_TRUE(hasWarning(l, "spec.runPolicy.schedulingPolicy.minAvailable: the gang starts all 4 replicas together"));
  t.replace(t.find("minAvailable: 2"), 15, "minAvailable: 9");
  t.replace(t.find(", priorityClass: high"), 21, "");
  EXPECT_NE(errorOf(t).find("minAvailable 9 is more than the job's 4 replicas"), std::string::npos) << errorOf(t);

  // elasticPolicy: torchrun's settings; the launch keeps its size.
  l = load(with("", "  elasticPolicy:\n    minReplicas: 2\n    maxReplicas: 6\n    maxRestarts: 3\n"
                    "    rdzvConf: [{key: last_call_timeout, value: '5'}]\n"));
  EXPECT_EQ(l.job.elastic_env, (std::map<std::string, std::string>{{"PET_NNODES", "2:6"},
                                                                   {"PET_RDZV_BACKEND", "c10d"},
                                                                   {"PET_MAX_RESTARTS", "3"},
                                                                   {"PET_RDZV_CONF", "last_call_timeout=5"}}));
  EXPECT_TRUE(hasWarning(l, "it is not scaled within 2..6"));
  EXPECT_NE(errorOf(with("", "  elasticPolicy: {minReplicas: 5, maxReplicas: 6}\n")).find("outside minReplicas..maxReplicas 5..6"),
            std::string::npos);
  EXPECT_NE(errorOf(with("", "  elasticPolicy: {rdzvBackend: etcd}\n")).find("expected c10d or static"), std::string::npos);
  EXPECT_NE(errorOf(with("", "  elasticPolicy: {minReplicas: 3, maxReplicas: 2}\n")).find("is above maxReplicas"), std::string::npos);
}

#include "spec/parser.h"
#include "spec/katib_regex.h"

#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

using namespace trainyard::spec;

namespace {

const char* kGood = R"(apiVersion: trainyard.dev/v1
kind: TrainJob
metadata:
  name: mnist-1
  labels: {team: vision}
spec:
  command: [python3, train.py]
  args: [--lr, "0.1", --epochs, 3]
  env:
    - name: FOO
      value: bar
  workingDir: sub
  resources: {cpu: 500m, memory: 2Gi, gpu: 1}
  restartPolicy: ExitCode
  backoffLimit: 3
  activeDeadlineSeconds: 60
  priority: 5
  metricsCollector: {kind: File, path: metrics.jsonl}
  outputs: {dir: out}
)";

LoadedSpec load(const std::string& text, std::vector<std::string> sets = {}) {
  return loadSpecString(text, "job.yaml", "/base", sets);
}

}  // namespace

TEST(Spec, ParsesEveryField) {
  auto s = load(kGood).job;
  EXPECT_EQ(s.name, "mnist-1");
  EXPECT_EQ(s.labels.at("team"), "vision");
  ASSERT_EQ(s.roles.size(), 1u);
  const auto& r = s.roles[0];
  EXPECT_EQ(r.command, (std::vector<std::string>{"python3", "train.py"}));
  EXPECT_EQ(r.args, (std::vector<std::string>{"--lr", "0.1", "--epochs", "3"}));
  ASSERT_EQ(r.env.size(), 1u);
  EXPECT_EQ(r.env[0], (std::pair<std::string, std::string>{"FOO", "bar"}));
  EXPECT_EQ(r.working_dir, "/base/sub");
  EXPECT_EQ(r.resources.cpu_millis, 500);
  EXPECT_EQ(r.resources.memory_bytes, 2LL << 30);
  EXPECT_EQ(r.resources.gpu, 1);
  EXPECT_EQ(s.restart_policy, RestartPolicy::ExitCode);
  EXPECT_EQ(s.backoff_limit, 3);
  EXPECT_EQ(s.active_deadline_seconds, 60);
  EXPECT_EQ(s.priority, 5);
  EXPECT_EQ(s.metrics.kind, MetricsCollector::Kind::File);
  EXPECT_EQ(s.metrics.path, "metrics.jsonl");
  EXPECT_EQ(s.outputs_dir, "/base/sub/out");
}

TEST(Spec, Defaults) {
  auto s = load("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\nspec: {command: [true]}\n").job;
  EXPECT_EQ(s.restart_policy, RestartPolicy::Never);
  EXPECT_EQ(s.backoff_limit, 6);
  EXPECT_FALSE(s.active_deadline_seconds);
  EXPECT_EQ(s.roles[0].resources.cpu_millis, 1000);
  EXPECT_EQ(s.roles[0].resources.memory_bytes, 0);
  EXPECT_EQ(s.metrics.kind, MetricsCollector::Kind::StdOut);
  EXPECT_EQ(s.roles[0].working_dir, "/base");
}

TEST(Spec, EnvAsMapping) {
  auto s = load("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\n"
                "spec: {command: [x], env: {A: 1, B: two}}\n").job;
  ASSERT_EQ(s.roles[0].env.size(), 2u);
  EXPECT_EQ(s.roles[0].env[0].second, "1");
}

TEST(Spec, SetOverridesListItemsScalarsAndNewKeys) {
  auto s = load(kGood, {"spec.args[1]=0.01", "spec.backoffLimit=9", "metadata.name=run-2", "spec.args[4]=--x",
                        "spec.env[0].value=baz", "spec.queue=gpu"}).job;
  EXPECT_EQ(s.roles[0].args[1], "0.01");
  EXPECT_EQ(s.roles[0].args[4], "--x");
  EXPECT_EQ(s.backoff_limit, 9);
  EXPECT_EQ(s.name, "run-2");
  EXPECT_EQ(s.roles[0].env[0].second, "baz");
  EXPECT_EQ(s.queue, "gpu");
}

TEST(Spec, SetErrorsNameTheOverride) {
  try {
    load(kGood, {"spec.backoffLimit=lots"});
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field, "spec.backoffLimit");
    EXPECT_NE(std::string(e.what()).find("--set spec.backoffLimit"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected an integer"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load(kGood, {"spec.args[9]=x"}), SpecError);
  EXPECT_THROW(load(kGood, {"spec.command.x=1"}), SpecError);
  EXPECT_THROW(load(kGood, {"noequals"}), SpecError);
}

TEST(Spec, JsonRoundTrip) {
  auto s = load(kGood).job;
  nlohmann::json j = s;
  auto back = j.get<TrainJobSpec>();
  EXPECT_EQ(nlohmann::json(back), j);
  EXPECT_EQ(back.active_deadline_seconds, 60);
  EXPECT_EQ(back.roles[0].resources.gpu, 1);
}

TEST(Spec, VolumesAtSpecAndRoleLevel) {
  auto s = load(std::string(R"(apiVersion: trainyard.dev/v1
kind: TrainJob
metadata: {name: v}
spec:
  framework: pytorch
  command: [python3, t.py]
  image: localhost/img:1
  volumes:
    - {hostPath: /usr, readOnly: true}
    - {hostPath: data, mountPath: /data}
  roles:
    master: {}
    worker:
      replicas: 2
      volumes: [{hostPath: /scratch, mountPath: /scratch}]
)")).job;
  ASSERT_EQ(s.roles.size(), 2u);
  const auto& m = s.roles[0].volumes;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].host_path, "/usr");
  EXPECT_EQ(m[0].mount_path, "/usr");
  EXPECT_TRUE(m[0].read_only);
  EXPECT_EQ(m[1].host_path, "/base/data");  // relative to the spec's file
  EXPECT_EQ(m[1].mount_path, "/data");
  EXPECT_FALSE(m[1].read_only);
  ASSERT_EQ(s.roles[1].volumes.size(), 3u);  // the spec's, then the role's
  EXPECT_EQ(s.roles[1].volumes[2].mount_path, "/scratch");
  nlohmann::json j = s;
  EXPECT_EQ(nlohmann::json(j.get<TrainJobSpec>()), j);

  auto error = [&](const std::string& volumes) {
    try {
      load(std::string("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: v}\nspec:\n  command: [a]\n"
                       "  volumes: ") + volumes + "\n");
    } catch (const SpecError& e) {
      return e.field + ": " + e.what();
    }
    return std::string("accepted");
  };
  EXPECT_NE(error("[{mountPath: /x}]").find("spec.volumes[0].hostPath"), std::string::npos);
  EXPECT_NE(error("[{hostPath: /x, mountPath: rel}]").find("expected an absolute path"), std::string::npos);
  EXPECT_NE(error("[{hostPath: /x, readOnly: maybe}]").find("expected true or false"), std::string::npos);
  EXPECT_NE(error("[{hostPath: /x}, {hostPath: /y, mountPath: /x}]").find("mounted twice"), std::string::npos);
  EXPECT_NE(error("{hostPath: /x}").find("expected a list"), std::string::npos);
  EXPECT_NE(error("[{hostPath: /x, subPath: a}]").find("subPath"), std::string::npos);
}

const char* kHeadForSize = "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata:\n  name: a\nspec:\n";

TEST(Spec, TooLargeIsRefusedBeforeParsing) {
  std::string text = std::string(kHeadForSize) + "  command: [a]\n# " + std::string(kMaxSpecBytes, 'x') + "\n";
  try {
    load(text);
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_NE(std::string(e.what()).find("at most 1048576 bytes"), std::string::npos) << e.what();
  }
  // A leading or trailing "---" (an empty document) is not a second spec.
  EXPECT_NO_THROW(load(std::string(kHeadForSize) + "  command: [a]\n---\n# the end\n"));
  EXPECT_NO_THROW(load("---\n" + std::string(kHeadForSize) + "  command: [a]\n...\n"));
  // yaml-cpp's LoadAll never returned on this; it must be refused at once.
  EXPECT_THROW(load(",# T"), SpecError);
}

TEST(Spec, Names) {
  EXPECT_TRUE(isValidName("a"));
  EXPECT_TRUE(isValidName("fmnist-mlp-2"));
  EXPECT_FALSE(isValidName("Upper"));
  EXPECT_FALSE(isValidName("-a"));
  EXPECT_FALSE(isValidName("a-"));
  EXPECT_FALSE(isValidName("a_b"));
  EXPECT_FALSE(isValidName(std::string(64, 'a')));
}

// Each bad spec must be rejected with file:line:col, the field path and what
// was expected.
struct BadSpec {
  const char* label;
  const char* yaml;
  int line, column;
  const char* field;
  const char* expected;  // a substring of the message
};

const char* kHead = "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata:\n  name: a\nspec:\n";  // spec at line 5

void PrintTo(const BadSpec& b, std::ostream* os) { *os << b.label; }

class BadSpecs : public ::testing::TestWithParam<BadSpec> {};

TEST_P(BadSpecs, RejectedWithLocationFieldAndExpectation) {
  const BadSpec& b = GetParam();
  std::string text = b.yaml;
  if (text.rfind("@", 0) == 0) text = std::string(kHead) + text.substr(1);
  try {
    load(text);
    FAIL() << b.label << ": accepted";
  } catch (const SpecError& e) {
    std::string what = e.what();
    EXPECT_EQ(e.file, "job.yaml") << b.label;
    EXPECT_EQ(e.line, b.line) << b.label << ": " << what;
    EXPECT_EQ(e.column, b.column) << b.label << ": " << what;
    EXPECT_EQ(e.field, b.field) << b.label << ": " << what;
    EXPECT_NE(what.find(b.expected), std::string::npos) << b.label << ": " << what;
    if (b.line > 0) {
      EXPECT_EQ(what.rfind("job.yaml:" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": ", 0), 0u) << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Spec, BadSpecs,
    ::testing::Values(
        BadSpec{"malformed", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nspec: {command: [a, b}\n", 3, 22, "", "malformed YAML"},
        BadSpec{"unknown_top", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\nspecs: {}\n", 4, 1, "specs", "unknown field 'specs'"},
        BadSpec{"unknown_spec_field", "@  comand: [a]\n", 6, 3, "spec.comand", "unknown field 'comand'"},
        BadSpec{"missing_command", "@  args: [a]\n", 6, 3, "spec.command", "missing required field 'command'"},
        BadSpec{"args_not_list", "@  command: [a]\n  args: {x: 1}\n", 7, 9, "spec.args", "expected a list of strings"},
        BadSpec{"args_item_map", "@  command: [a]\n  args: [x, {y: 1}]\n", 7, 13, "spec.args[1]", "expected a string"},
        BadSpec{"memory_2Gx", "@  command: [a]\n  resources:\n    memory: 2Gx\n", 8, 13, "spec.resources.memory", "expected a memory quantity"},
        BadSpec{"memory_negative", "@  command: [a]\n  resources: {memory: -5Gi}\n", 7, 23, "spec.resources.memory", "expected a memory quantity"},
        BadSpec{"cpu_negative", "@  command: [a]\n  resources: {cpu: -1}\n", 7, 20, "spec.resources.cpu", "expected a positive CPU quantity"},
        BadSpec{"cpu_text", "@  command: [a]\n  resources: {cpu: lots}\n", 7, 20, "spec.resources.cpu", "expected a positive CPU quantity"},
        BadSpec{"cpu_zero", "@  command: [a]\n  resources: {cpu: 0}\n", 7, 20, "spec.resources.cpu", "positive"},
        BadSpec{"gpu_fraction", "@  command: [a]\n  resources: {gpu: 1.5}\n", 7, 20, "spec.resources.gpu", "a whole number of GPUs or a share of one below 1"},
        BadSpec{"placement", "@  command: [a]\n  placement: random\n", 7, 14, "spec.placement", "expected pack or spread"},
        BadSpec{"start_timeout", "@  command: [a]\n  startTimeoutSeconds: 0\n", 7, 24, "spec.startTimeoutSeconds", "expected an integer in [1,"},
        BadSpec{"walltime", "@  command: [a]\n  walltime: soon\n", 7, 13, "spec.walltime", "a duration such as 90s"},
        BadSpec{"node_selector", "@  command: [a]\n  nodeSelector: [a]\n", 7, 17, "spec.nodeSelector", "expected a mapping"},
        BadSpec{"queue_unknown_resource", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  quota: {cpu: 4, tpu: 2}\n", 5, 19, "spec.quota.tpu", "unknown resource \"tpu\""},
        BadSpec{"queue_negative_quota", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  quota: {cpu: -4}\n", 5, 16, "spec.quota.cpu", "expected a positive CPU quantity"},
        BadSpec{"queue_negative_gpu", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  quota: {gpu: -1}\n", 5, 16, "spec.quota.gpu", "expected a number in [0,"},
        BadSpec{"queue_borrow_without_cohort", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  borrowingLimit: {cpu: 1}\n", 5, 19, "spec.borrowingLimit", "need a cohort"},
        BadSpec{"queue_user_weight", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  userWeights: {alice: 0}\n", 5, 24, "spec.userWeights.alice", "expected a weight above 0"},
        BadSpec{"queue_user_weights_list", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  userWeights: [alice]\n", 5, 16, "spec.userWeights", "expected a map"},
        BadSpec{"queue_preemption", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  preemption: {withinQueue: Always}\n", 5, 29, "spec.preemption.withinQueue", "expected LowerPriority or Never"},
        BadSpec{"cohort_self_parent", "apiVersion: trainyard.dev/v1\nkind: Cohort\nmetadata: {name: c}\nspec: {parent: c}\n", 4, 16, "spec.parent", "its own parent"},
        BadSpec{"resources_unknown", "@  command: [a]\n  resources: {cpus: 1}\n", 7, 15, "spec.resources.cpus", "unknown field 'cpus'"},
        BadSpec{"bad_name", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: My_Job}\nspec: {command: [a]}\n", 3, 18, "metadata.name", "DNS-1123"},
        BadSpec{"missing_metadata", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nspec: {command: [a]}\n", 1, 1, "metadata", "missing required field 'metadata'"},
        BadSpec{"missing_name", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {labels: {}}\nspec: {command: [a]}\n", 3, 11, "metadata.name", "missing required field 'name'"},
        BadSpec{"api_version", "apiVersion: v2\nkind: TrainJob\nmetadata: {name: a}\nspec: {command: [a]}\n", 1, 13, "apiVersion", "expected trainyard.dev/v1"},
        BadSpec{"kind", "apiVersion: trainyard.dev/v1\nkind: Pod\nmetadata: {name: a}\nspec: {command: [a]}\n", 2, 7, "kind", "expected TrainJob"},
        BadSpec{"restart_policy", "@  command: [a]\n  restartPolicy: Sometimes\n", 7, 18, "spec.restartPolicy", "expected one of Never, OnFailure, ExitCode"},
        BadSpec{"backoff_negative", "@  command: [a]\n  backoffLimit: -1\n", 7, 17, "spec.backoffLimit", "expected an integer in [0, 1000]"},
        BadSpec{"backoff_text", "@  command: [a]\n  backoffLimit: three\n", 7, 17, "spec.backoffLimit", "expected an integer"},
        BadSpec{"deadline_zero", "@  command: [a]\n  activeDeadlineSeconds: 0\n", 7, 26, "spec.activeDeadlineSeconds", "expected an integer in [1,"},
        BadSpec{"env_bad_name", "@  command: [a]\n  env:\n    - name: 1FOO\n      value: x\n", 8, 13, "spec.env[0].name", "environment variable name"},
        BadSpec{"env_missing_name", "@  command: [a]\n  env:\n    - value: x\n", 8, 7, "spec.env[0].name", "missing required field 'name'"},
        BadSpec{"env_unknown", "@  command: [a]\n  env:\n    - name: A\n      valueFrom: {}\n", 9, 7, "spec.env[0].valueFrom", "unknown field"},
        BadSpec{"collector_kind", "@  command: [a]\n  metricsCollector: {kind: Prometheus}\n", 7, 28, "spec.metricsCollector.kind", "expected one of StdOut, File, TensorFlowEvent, Custom, None"},
        BadSpec{"collector_file_no_path", "@  command: [a]\n  metricsCollector: {kind: File}\n", 7, 21, "spec.metricsCollector.path", "needs a path"},
        BadSpec{"collector_bad_regex", "@  command: [a]\n  metricsCollector: {filter: \"([a-z\"}\n", 7, 30, "spec.metricsCollector.filter", "valid regular expression"},
        BadSpec{"replicas_without_framework", "@  command: [a]\n  replicas: 2\n", 7, 13, "spec.replicas", "need a framework"},
        BadSpec{"framework", "@  command: [a]\n  framework: jax\n", 7, 14, "spec.framework", "expected one of none, pytorch"},
        BadSpec{"command_empty", "@  command: []\n", 6, 12, "spec.command", "non-empty command"},
        BadSpec{"spec_is_list", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\nspec: [1, 2]\n", 4, 7, "spec", "expected a mapping"},
        BadSpec{"document_is_list", "- a\n- b\n", 1, 1, "", "expected a mapping"},
        BadSpec{"empty_file", "", 0, 0, "", "the file is empty"},
        BadSpec{"queue_name", "@  command: [a]\n  queue: GPU Queue\n", 7, 10, "spec.queue", "DNS-1123"},
        // A key said twice is refused with both places (yaml-cpp keeps the first silently).
        BadSpec{"duplicate_key", "@  command: [a]\n  backoffLimit: 1\n  command: [b]\n", 8, 3, "spec.command", "first at line 6, column 3"},
        BadSpec{"duplicate_nested", "@  command: [a]\n  resources: {cpu: 1, cpu: 2}\n", 7, 23, "spec.resources.cpu", "duplicate key \"cpu\""},
        BadSpec{"two_documents", "@  command: [a]\n---\napiVersion: trainyard.dev/v1\n", 7, 1, "", "more than one YAML document"},
        BadSpec{"two_documents_inline", "@  command: [a]\n--- {a: 1}\n", 7, 1, "", "more than one YAML document"},
        BadSpec{"invalid_utf8", "@  command: [a]\n  args: [\"caf\xc3\"]\n", 7, 14, "", "invalid UTF-8"},
        // Found by fuzz_spec: a container that is a scalar was an internal error (exit 3).
        BadSpec{"kubeflow_container_scalar", "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: x}\nspec:\n  pytorchReplicaSpecs:\n    Master:\n      replicas: 1\n      template:\n        spec:\n          containers:\n            - name:256Mi}}\n", 11, 15, "spec.pytorchReplicaSpecs.Master.template.spec.containers[0]", "expected a container"},
        BadSpec{"overlong_utf8", "@  command: [\"\xc0\xaf\"]\n", 6, 14, "", "invalid UTF-8"}),
    [](const ::testing::TestParamInfo<BadSpec>& i) { return std::string(i.param.label); });

#include "spec/schema.h"

TEST(Schema, TheParserAcceptsWhatTheSchemaNamesAndNothingElse) {
  namespace sc = trainyard::spec::schema;
  EXPECT_TRUE(sc::keysAt("TrainJob", "").count("volumes"));
  EXPECT_TRUE(sc::keysAt("TrainJob", "roles.*").count("replicas"));
  EXPECT_EQ(sc::keysAt("TrainJob", "volumes[]"), (std::set<std::string>{"name", "hostPath", "mountPath", "readOnly"}));
  EXPECT_THROW(sc::keysAt("TrainJob", "nosuch"), std::logic_error);
  EXPECT_THROW(sc::keysAt("TrainJob", "image"), std::logic_error);  // not a mapping
  // A key the schema does not name is refused by the parser, naming it.
  try {
    load(std::string(kHeadForSize) + "  command: [a]\n  resources: {cpu: 1, disk: 5}\n");
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field, "spec.resources.disk");
  }
  // Structural: every node has a type, or is explicitly open (int-or-string, preserved).
  std::function<void(const nlohmann::json&, const std::string&)> structural = [&](const nlohmann::json& s, const std::string& at) {
    EXPECT_TRUE(s.contains("type") || s.contains("x-kubernetes-int-or-string") ||
                s.contains("x-kubernetes-preserve-unknown-fields")) << at;
    if (s.contains("properties"))
      for (const auto& [k, v] : s["properties"].items()) structural(v, at + "." + k);
    if (s.contains("items")) structural(s["items"], at + "[]");
    if (s.contains("additionalProperties")) structural(s["additionalProperties"], at + ".*");
  };
  for (const auto& kind : sc::crdKinds()) structural(sc::openApi(sc::specOf(kind)), kind);
  auto tj = sc::openApi(sc::specOf("TrainJob"));
  EXPECT_EQ(tj["properties"]["restartPolicy"]["enum"], nlohmann::json({"Never", "OnFailure", "ExitCode"}));
  EXPECT_EQ(tj["properties"]["roles"]["additionalProperties"]["properties"]["replicas"]["type"], "integer");
}

TEST(KatibRegex, BracesThatAreNotRepetitionsAreLiterals) {
  using trainyard::spec::literalBraces;
  EXPECT_EQ(literalBraces(R"({metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)})"),
            R"(\{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)\})");
  EXPECT_EQ(literalBraces(R"(a{2}b{1,}c{1,3}[{}]\{)"), R"(a{2}b{1,}c{1,3}[{}]\{)");  // repetitions, a class, an escape stay
  EXPECT_EQ(literalBraces("({2})"), R"((\{2\}))");  // nothing to repeat: literal
}

TEST(PriorityClass, KubernetesShapeIsParsedAndCheckedAtItsPlace) {
  auto l = trainyard::spec::loadSpecString(
      "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\nglobalDefault: false\n"
      "description: urgent work\npreemptionPolicy: PreemptLowerPriority\n",
      "pc.yaml", "/base");
  ASSERT_TRUE(l.queue);
  EXPECT_EQ(l.queue->kind, "PriorityClass");
  EXPECT_EQ(l.queue->value, 1000);
  try {
    trainyard::spec::loadSpecString("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: x}\nvalue: high\n",
                                    "pc.yaml", "/base");
    FAIL() << "accepted";
  } catch (const trainyard::spec::SpecError& e) {
    EXPECT_NE(std::string(e.what()).find("pc.yaml:4:8: value"), std::string::npos) << e.what();
  }
}

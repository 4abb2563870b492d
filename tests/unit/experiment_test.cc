// Experiment specs (Trainyard and Katib) and the experiment controller driving
// real (tiny) trial processes.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "control/experiment_controller.h"
#include "control/owner.h"
#include "spec/parser.h"
#include "local_harness.h"

using namespace trainyard;
using namespace std::chrono_literals;

namespace {

// Trials print `epoch=E loss=...` for 3 epochs; loss = (x - 0.3)^2 + 1/epoch.
std::string experimentYaml(const std::string& name, const std::string& extra_spec, int max_trials = 6,
                           const std::string& script = "") {
  std::string body = script.empty()
                         ? "import sys\nx = float(sys.argv[1])\nfor e in range(1, 4):\n    print(f'epoch={e} loss={(x - 0.3) ** 2 + 1 / e}', flush=True)\n"
                         : script;
  std::string indented;
  for (size_t p = 0, q; p < body.size(); p = q + 1) {
    q = body.find('\n', p);
    if (q == std::string::npos) q = body.size();
    indented += "          " + body.substr(p, q - p) + "\n";
  }
  return "apiVersion: trainyard.dev/v1\nkind: Experiment\nmetadata: {name: " + name + "}\nspec:\n" +
         "  objective: {metric: loss, goal: minimize}\n" + extra_spec +
         "  parameters:\n    - {name: x, type: double, min: 0, max: 1}\n" +
         "  parallelTrials: 2\n  maxTrials: " + std::to_string(max_trials) + "\n  seed: 7\n" +
         "  trialTemplate:\n    spec:\n      command: [/usr/bin/python3, -c]\n      args:\n        - |\n" + indented +
         "        - \"${trialParameters.x}\"\n      resources: {cpu: 100m}\n";
}

std::string errorOf(const std::string& text) {
  try {
    spec::loadSpecString(text, "exp.yaml", "/base");
  } catch (const spec::SpecError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST(ExperimentSpec, ParsesAndMakesTrialJobs) {
  auto l = spec::loadSpecString(experimentYaml("e1", "  algorithm: {name: tpe, settings: {n_startup_trials: 3}}\n"
                                                     "  earlyStopping: {name: asha, settings: {max_resource: 3}}\n"),
                                "exp.yaml", "/base");
  ASSERT_TRUE(l.experiment);
  const auto& e = *l.experiment;
  EXPECT_EQ(e.name, "e1");
  EXPECT_EQ(e.algorithm, "tpe");
  EXPECT_EQ(e.algorithm_settings.at("n_startup_trials"), "3");
  EXPECT_EQ(e.early_stopping, "asha");
  EXPECT_EQ(e.parallel_trials, 2);
  auto job = e.trialJob({{"x", "0.25"}}, "e1-4");
  EXPECT_EQ(job.name, "e1-4");
  EXPECT_EQ(job.roles[0].args.back(), "0.25");
  EXPECT_EQ(job.roles[0].resources.cpu_millis, 100);
  nlohmann::json j = e;
  auto back = j.get<spec::ExperimentSpec>();
  EXPECT_EQ(back.trialJob({{"x", "0.5"}}, "e1-0").roles[0].args.back(), "0.5");
}

TEST(ExperimentSpec, ErrorsNameTheField) {
  std::string base = experimentYaml("e", "");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  EXPECT_NE(errorOf(with("min: 0, max: 1", "min: 2, max: 1")).find("spec.parameters[0]: expected min < max"), std::string::npos);
  EXPECT_NE(errorOf(with("goal: minimize", "goal: lower")).find("spec.objective.goal: expected maximize or minimize"), std::string::npos);
  EXPECT_NE(errorOf(with("  parallelTrials", "  algorithm: {name: bohb}\n  parallelTrials")).find("spec.algorithm: unknown algorithm \"bohb\""), std::string::npos);
  EXPECT_NE(errorOf(with("${trialParameters.x}", "${trialParameters.y}")).find("unknown trial parameter \"y\" (known: x)"), std::string::npos);
  EXPECT_NE(errorOf(with("${trialParameters.x}", "${trialParameters.y}")).find("exp.yaml:"), std::string::npos);
  EXPECT_NE(errorOf(with("  parallelTrials", "  earlyStopping: {name: asha, settings: {reduction_factor: 1}}\n  parallelTrials")).find("spec.earlyStopping: earlyStopping asha: setting reduction_factor"), std::string::npos);
  EXPECT_NE(errorOf(with("type: double", "type: float")).find("spec.parameters[0].type: expected double, int, categorical or discrete"), std::string::npos);
  EXPECT_NE(errorOf(with("min: 0, max: 1", "min: 0, max: 1, scale: log")).find("a log scale needs min > 0"), std::string::npos);
}

TEST(ExperimentSpec, KatibExperimentTranslates) {
  const char* katib = R"(apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: k, namespace: kubeflow}
spec:
  objective: {type: maximize, goal: 0.9, objectiveMetricName: acc, additionalMetricNames: [loss],
              metricStrategies: [{name: acc, value: latest}]}
  algorithm:
    algorithmName: bayesianoptimization
    algorithmSettings: [{name: random_state, value: "10"}]
  earlyStopping: {algorithmName: medianstop, algorithmSettings: [{name: min_trials_required, value: "2"}]}
  parallelTrialCount: 3
  maxTrialCount: 12
  maxFailedTrialCount: 3
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.05", distribution: logUniform}}
    - {name: layers, parameterType: int, feasibleSpace: {min: "2", max: "5"}}
    - {name: opt, parameterType: categorical, feasibleSpace: {list: [sgd, adam]}}
  metricsCollectorSpec: {collector: {kind: StdOut}}
  trialTemplate:
    primaryContainerName: training-container
    trialParameters:
      - {name: learningRate, reference: lr}
      - {name: numberLayers, reference: layers}
      - {name: optimizer, reference: opt}
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        backoffLimit: 1
        template:
          spec:
            containers:
              - name: training-container
                image: kubeflowkatib/mxnet-mnist:latest
                command: [python3, /opt/train.py, "--lr=${trialParameters.learningRate}",
                          "--num-layers=${trialParameters.numberLayers}", "--optimizer=${trialParameters.optimizer}",
                          "--name=${trialSpec.Name}"]
            restartPolicy: Never
)";
  auto l = spec::loadSpecString(katib, "k.yaml", "/base");
  ASSERT_TRUE(l.experiment);
  const auto& e = *l.experiment;
  EXPECT_EQ(e.algorithm, "gp");
  EXPECT_TRUE(e.objectives[0].maximize);
  EXPECT_EQ(e.objectives[0].strategy, "latest");
  // An additional metric is read by the objective's direction, as Katib's defaults say.
  EXPECT_EQ(e.additional_strategies, (std::map<std::string, std::string>{{"loss", "max"}}));
  std::string other = katib;
  other.replace(other.find("{name: acc, value: latest}"), 26, "{name: loss, value: min}");
  EXPECT_EQ(spec::loadSpecString(other, "k.yaml", "/base").experiment->additional_strategies.at("loss"), "min");
  other.replace(other.find("{name: loss, value: min}"), 24, "{name: lss, value: min}");
  EXPECT_NE(errorOf(other).find("\"lss\" is neither the objective metric nor one of additionalMetricNames"), std::string::npos);
  EXPECT_EQ(*e.target, 0.9);
  EXPECT_EQ(e.early_stopping, "median");
  EXPECT_EQ(e.max_trials, 12);
  EXPECT_TRUE(e.space.params[0].log);
  EXPECT_EQ(e.space.params[1].type, tune::Param::Type::Int);
  auto job = e.trialJob({{"lr", "0.02"}, {"layers", "3"}, {"opt", "adam"}}, "k-2");
  EXPECT_EQ(job.roles[0].command,
            (std::vector<std::string>{"python3", "/opt/train.py", "--lr=0.02", "--num-layers=3", "--optimizer=adam", "--name=k-2"}));
  EXPECT_EQ(job.backoff_limit, 1);
  EXPECT_EQ(job.restart_policy, spec::RestartPolicy::OnFailure);
  bool namespace_warned = false;
  for (const auto& w : l.warnings) namespace_warned |= w.find("metadata.namespace") != std::string::npos;
  EXPECT_TRUE(namespace_warned);

  std::string enas = katib;
  enas.replace(enas.find("bayesianoptimization"), 20, "enas");
  EXPECT_NE(errorOf(enas).find("algorithm enas is neural architecture search, which is out of scope for now"),
            std::string::npos);
}

namespace {
struct ExperimentFixture : trainyard::test::LocalHarness {
  void SetUp() override {
    LocalHarness::SetUp();
    jobs = std::make_unique<control::JobController>(*st, *be, co);
    exps = std::make_unique<control::ExperimentController>(*st, *jobs, co);
  }
  spec::ExperimentSpec load(const std::string& yaml) { return *spec::loadSpecString(yaml, "exp.yaml", dir).experiment; }
  store::ExperimentRecord runToEnd(int64_t id) {
    for (;;) {
      auto e = exps->reconcile(id);
      if (store::isTerminal(e.phase)) return e;
      jobs->wait(100ms);
    }
  }
  std::unique_ptr<control::JobController> jobs;
  std::unique_ptr<control::ExperimentController> exps;
};
using Experiments = ExperimentFixture;
}  // namespace

TEST_F(Experiments, RunsExactlyMaxTrialsAndNamesTheBest) {
  auto e = exps->submit(load(experimentYaml("sweep", "  algorithm: {name: tpe, settings: {n_startup_trials: 3}}\n", 6)));
  auto end = runToEnd(e.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  EXPECT_EQ(end.reason, "MaxTrialsReached");
  auto trials = st->trials(e.id);
  ASSERT_EQ(trials.size(), 6u);
  for (const auto& t : trials) {
    EXPECT_EQ(t.state, store::kTrialSucceeded);
    ASSERT_EQ(t.objective.size(), 1u);
    double x = std::stod(t.params.at("x"));
    EXPECT_NEAR(t.objective[0], (x - 0.3) * (x - 0.3) + 1.0 / 3, 1e-6);  // min over epochs
  }
  int best = control::ExperimentController::bestTrial(end.spec, trials);
  for (const auto& t : trials) EXPECT_LE(trials[best].objective[0], t.objective[0]);
}

TEST_F(Experiments, TargetEndsTheExperimentAndCancelsRunningTrials) {
  // Trials with x < 0.5 reach the target at once; the others run until cancelled.
  std::string script = "import sys, time\nx = float(sys.argv[1])\nif x >= 0.5:\n    time.sleep(300)\nprint(f'loss={x}', flush=True)\n";
  std::string yaml = experimentYaml("target", "", 20, script);
  yaml.replace(yaml.find("goal: minimize}"), 15, "goal: minimize, target: 0.5}");
  yaml.replace(yaml.find("min: 0, max: 1"), 14, "min: 0, max: 1, step: 0.25");
  yaml.insert(yaml.find("  parameters:"), "  algorithm: {name: grid}\n");  // x = 0, 0.25, ... in order
  auto e = exps->submit(load(yaml));
  auto end = runToEnd(e.id);
  EXPECT_EQ(end.reason, "GoalReached");
  auto trials = st->trials(e.id);
  EXPECT_LT(trials.size(), 20u);
  for (const auto& t : trials) EXPECT_NE(t.state, store::kTrialRunning);
}

TEST_F(Experiments, FailuresAndMissingMetricsCountAgainstTheBudget) {
  std::string script = "import sys\nx = float(sys.argv[1])\nsys.exit(3 if x > 0.5 else 0)\n";  // never prints loss
  std::string yaml = experimentYaml("broken", "  maxFailedTrials: 1\n", 10, script);
  auto e = exps->submit(load(yaml));
  auto end = runToEnd(e.id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_EQ(end.reason, "MaxFailedTrialsReached");
  std::set<std::string> states;
  for (const auto& t : st->trials(e.id)) states.insert(t.state);
  EXPECT_TRUE(states.count(store::kTrialMetricsUnavailable) || states.count(store::kTrialFailed));
  for (const auto& t : st->trials(e.id))
    if (t.state == store::kTrialMetricsUnavailable) {
      EXPECT_NE(t.message.find("never reported loss"), std::string::npos);
    }
  EXPECT_EQ(control::ExperimentController::bestTrial(end.spec, st->trials(e.id)), -1);  // none is silently "best"
}

TEST_F(Experiments, AshaStopsHopelessTrialsAndRecordsTheRung) {
  // Each epoch waits for a go-file, so the controller sees every rung in turn.
  std::string script =
      "import sys, os, time\nx = float(sys.argv[1])\nfor e in range(1, 10):\n"
      "    print(f'epoch={e} loss={(x - 0.3) ** 2 + 1 / e}', flush=True)\n"
      "    while not os.path.exists(f'go-{e}'):\n        time.sleep(0.02)\n";
  std::string yaml = experimentYaml("asha", "  earlyStopping: {name: asha, settings: {min_resource: 1, max_resource: 9, reduction_factor: 3}}\n", 6, script);
  yaml.replace(yaml.find("parallelTrials: 2"), 17, "parallelTrials: 6");
  auto e = exps->submit(load(yaml));
  // Every trial still going has reported `epoch` (and the controller has seen it).
  auto allReported = [&](int epoch) {
    auto trials = st->trials(e.id);
    if (trials.size() < 6) return false;
    for (const auto& t : trials) {
      if (t.state != store::kTrialRunning || t.stop_requested) continue;
      auto job = st->getJob(t.job_name);
      auto loss = job ? st->metrics(job->id, "loss") : std::vector<metrics::MetricPoint>{};
      if (loss.empty() || loss.back().step < epoch) return false;
    }
    return true;
  };
  for (int epoch = 1; epoch <= 9; ++epoch) {
    do {
      exps->reconcile(e.id);
      jobs->wait(20ms);
    } while (!allReported(epoch));
    exps->reconcile(e.id);  // one pass with every report in: the rung decisions
    std::ofstream(dir + "/go-" + std::to_string(epoch)) << "go";
  }
  auto end = runToEnd(e.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  int stopped = 0, succeeded = 0;
  for (const auto& t : st->trials(e.id)) {
    if (t.state == store::kTrialEarlyStopped) {
      ++stopped;
      EXPECT_GE(t.rung, 0);
      EXPECT_NE(t.message.find("stopped early at step"), std::string::npos);
    }
    succeeded += t.state == store::kTrialSucceeded;
  }
  EXPECT_GE(stopped, 3);  // at rung 0 only the top third of 6 goes on
  EXPECT_GE(succeeded, 1);
}

TEST_F(Experiments, ResumeAfterTheControllerDiedRerunsInterruptedTrials) {
  auto spec = load(experimentYaml("resume", "  algorithm: {name: random}\n", 5,
                                  "import sys, os, time\nprint(f'loss={float(sys.argv[1])}', flush=True)\n"
                                  "while not os.path.exists('finish'):\n    time.sleep(0.02)\n"));
  int64_t id;
  {
    // A first controller under an owner that is provably dead: this host, a PID that does not exist.
    control::ControllerOptions dead = co;
    std::string self = control::selfOwner();
    dead.owner = self.substr(0, self.find(':')) + ":999999999:0";
    auto be1 = backend::makeLocalBackend({.tie_to_parent = true, .cpu_quota = false, .supervisor = ""});
    control::JobController jobs1(*st, *be1, dead);
    control::ExperimentController exps1(*st, jobs1, dead);
    auto e = exps1.submit(spec);
    id = e.id;
    exps1.reconcile(id);  // starts 2 trials, then "crashes": be1 kills its processes
    ASSERT_EQ(st->trials(id).size(), 2u);
  }
  std::ofstream(dir + "/finish") << "1";
  auto resumed = exps->resume("resume", false);
  auto end = runToEnd(resumed.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  auto trials = st->trials(id);
  ASSERT_EQ(trials.size(), 5u);  // exactly maxTrials
  EXPECT_EQ(trials[0].runs, 2);  // interrupted, then run again
  EXPECT_EQ(trials[1].runs, 2);
  EXPECT_EQ(trials[4].runs, 1);
  for (const auto& t : trials) EXPECT_EQ(t.state, store::kTrialSucceeded);
  EXPECT_EQ(st->getJob("resume-0")->reason, "ControllerLost");
  EXPECT_EQ(st->getJob("resume-0-r1")->phase, store::kSucceeded);
}

TEST(ExperimentSpec, KatibTrialSpecCanBeAPyTorchJob) {
  const char* katib = R"(apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: kp}
spec:
  objective: {type: minimize, objectiveMetricName: loss}
  algorithm: {algorithmName: random}
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.1"}}
  trialTemplate:
    trialParameters: [{name: learningRate, reference: lr}]
    trialSpec:
      apiVersion: kubeflow.org/v1
      kind: PyTorchJob
      spec:
        pytorchReplicaSpecs:
          Master:
            replicas: 1
            restartPolicy: OnFailure
            template: {spec: {containers: [{name: pytorch, command: [python3, ddp.py, "--lr=${trialParameters.learningRate}"]}]}}
          Worker:
            replicas: 2
            restartPolicy: OnFailure
            template: {spec: {containers: [{name: pytorch, command: [python3, ddp.py, "--lr=${trialParameters.learningRate}"]}]}}
)";
  auto e = *spec::loadSpecString(katib, "kp.yaml", "/base").experiment;
  auto job = e.trialJob({{"lr", "0.05"}}, "kp-0");
  EXPECT_EQ(job.framework, "pytorch");
  EXPECT_EQ(job.totalReplicas(), 3);
  EXPECT_EQ(job.role("worker")->command.back(), "--lr=0.05");
  EXPECT_EQ(job.primaryReplica(), "master-0");

  // Katib's default conditions for its kinds are what a trial does anyway; retain is accepted.
  std::string with = katib;
  with.replace(with.find("    trialSpec:"), 0,
               "    retain: true\n"
               "    successCondition: status.conditions.#(type==\"Succeeded\")#|#(status==\"True\")#\n"
               "    failureCondition: status.conditions.#(type==\"Failed\")#|#(status==\"True\")#\n");
  auto l = spec::loadSpecString(with, "kp.yaml", "/base");
  for (const auto& w : l.warnings) EXPECT_EQ(w.find("Condition"), std::string::npos) << w;
  with.replace(with.find("type==\"Succeeded\""), 17, "type==\"Done\"");
  l = spec::loadSpecString(with, "kp.yaml", "/base");
  bool warned = false;
  for (const auto& w : l.warnings) warned |= w.find("spec.trialTemplate.successCondition: a PyTorchJob trial succeeds") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST_F(Experiments, SameSeedSequentialExperimentsSuggestTheSameTrials) {
  std::string yaml = experimentYaml("seeded", "  algorithm: {name: tpe, settings: {n_startup_trials: 2}}\n", 5);
  yaml.replace(yaml.find("parallelTrials: 2"), 17, "parallelTrials: 1");
  auto run = [&](const std::string& name) {
    std::string y = yaml;
    y.replace(y.find("name: seeded"), 12, "name: " + name);
    auto e = exps->submit(load(y));
    runToEnd(e.id);
    std::vector<std::string> xs;
    for (const auto& t : st->trials(e.id)) xs.push_back(t.params.at("x"));
    return xs;
  };
  auto a = run("seeded-a"), b = run("seeded-b");
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(a, b);
  std::string y = yaml;
  y.replace(y.find("seed: 7"), 7, "seed: 8");
  y.replace(y.find("name: seeded"), 12, "name: seeded-c");
  auto e = exps->submit(load(y));
  runToEnd(e.id);
  EXPECT_NE(st->trials(e.id).front().params.at("x"), a.front());
}

TEST(ExperimentSpec, KatibAlgorithmNamesMap) {
  std::string error;
  EXPECT_EQ(spec::mapKatibAlgorithm("bayesianoptimization", error), "gp");
  EXPECT_EQ(spec::mapKatibAlgorithm("multivariate-tpe", error), "tpe");
  EXPECT_EQ(spec::mapKatibAlgorithm("cmaes", error), "cmaes");
  EXPECT_EQ(spec::mapKatibAlgorithm("hyperband", error), "hyperband");  // Katib's brackets, as a suggestion algorithm
  EXPECT_EQ(spec::mapKatibAlgorithm("pbt", error), "pbt");  // population based training
  EXPECT_FALSE(spec::mapKatibAlgorithm("darts", error));
  EXPECT_NE(error.find("out of scope for now"), std::string::npos);
  EXPECT_FALSE(spec::mapKatibAlgorithm("bohb", error));
  EXPECT_NE(error.find("unknown algorithm \"bohb\""), std::string::npos);
}

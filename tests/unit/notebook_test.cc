// kind: Notebook: parsing (errors with file:line:col and the field path),
// and its translation into the job that runs Jupyter.
#include <gtest/gtest.h>

#include <algorithm>

#include "notebook/notebook_job.h"
#include "notebook/proxy_rules.h"
#include "notebook/state_dir.h"
#include "spec/parser.h"

using namespace trainyard;

namespace {
const char* kNotebook = R"(apiVersion: trainyard.dev/v1
kind: Notebook
metadata: {name: explore}
spec:
  resources: {cpu: 2, memory: 4Gi, gpu: 1}
  env: [{name: A, value: b}]
  idleTimeout: 30m
  queue: research
)";

spec::LoadedSpec load(const std::string& text) { return spec::loadSpecString(text, "nb.yaml", "/base"); }

std::string errorOf(const std::string& text) {
  try {
    load(text);
  } catch (const spec::SpecError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Notebook, ParsesItsFieldsAsAJobsOnes) {
  auto l = load(kNotebook);
  ASSERT_TRUE(l.notebook);
  const auto& nb = *l.notebook;
  EXPECT_EQ(nb.name, "explore");
  EXPECT_EQ(nb.idle_timeout_seconds, 1800);
  EXPECT_FALSE(nb.working_dir_given);
  EXPECT_EQ(nb.job.queue, "research");
  ASSERT_EQ(nb.job.roles.size(), 1u);
  EXPECT_EQ(nb.job.roles[0].resources.cpu_millis, 2000);
  EXPECT_EQ(nb.job.roles[0].resources.memory_bytes, int64_t{4} << 30);
  EXPECT_EQ(nb.job.roles[0].resources.gpu, 1);
  EXPECT_EQ(load("apiVersion: trainyard.dev/v1\nkind: Notebook\nmetadata: {name: a}\n").notebook->idle_timeout_seconds,
            spec::kDefaultIdleTimeoutSeconds);
  EXPECT_EQ(load("apiVersion: trainyard.dev/v1\nkind: Notebook\nmetadata: {name: a}\nspec: {idleTimeout: 0}\n").notebook->idle_timeout_seconds, 0);
}

TEST(Notebook, BadFieldsNameFileLineColumnAndPath) {
  std::string text = kNotebook;
  std::string e = errorOf(std::string(text).replace(text.find("30m"), 3, "soon"));
  EXPECT_NE(e.find("nb.yaml:7:16"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.idleTimeout"), std::string::npos) << e;
  e = errorOf(std::string(text).replace(text.find("cpu: 2"), 6, "cpu: lots"));
  EXPECT_NE(e.find("nb.yaml:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.resources.cpu"), std::string::npos) << e;
  e = errorOf(std::string(text) + "  command: [bash]\n");
  EXPECT_NE(e.find("spec.command"), std::string::npos) << e;  // the server runs Jupyter
  e = errorOf("apiVersion: trainyard.dev/v1\nkind: Notebook\nmetadata: {name: Not_A_Name}\n");
  EXPECT_NE(e.find("metadata.name"), std::string::npos) << e;
}

TEST(Notebook, RunsAsAJobOfOneReplicaWithoutItsSecretsInTheSpec) {
  auto nb = *load(kNotebook).notebook;
  notebook::Launch at{"/data/notebooks/nb-alice-explore", "/data/workspaces/alice", 41234, "http://127.0.0.1:8080", "/opt/ty/trainyard"};
  auto job = notebook::notebookJob(nb, "alice", at);
  EXPECT_EQ(job.name, "nb-alice-explore");
  auto ref = notebook::notebookOf(job);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->owner, "alice");
  EXPECT_EQ(ref->name, "explore");
  EXPECT_EQ(ref->idle_timeout_seconds, 1800);
  ASSERT_EQ(job.totalReplicas(), 1);
  const auto& r = job.roles[0];
  EXPECT_EQ(r.working_dir, "/data/workspaces/alice");
  auto has = [&](const std::string& arg) { return std::find(r.command.begin(), r.command.end(), arg) != r.command.end(); };
  EXPECT_TRUE(has("--ip=127.0.0.1"));
  EXPECT_TRUE(has("--port=41234"));
  EXPECT_TRUE(has("--NotebookApp.base_url=/notebooks/alice/explore/"));
  std::map<std::string, std::string> env(r.env.begin(), r.env.end());
  EXPECT_EQ(env["JUPYTER_TOKEN_FILE"], "/data/notebooks/nb-alice-explore/jupyter-token");
  EXPECT_EQ(env["TRAINYARD_SERVER"], "http://127.0.0.1:8080");
  EXPECT_EQ(env["A"], "b");
  EXPECT_EQ(env.count("JUPYTER_TOKEN"), 0u);
  EXPECT_EQ(env.count("TRAINYARD_TOKEN"), 0u);  // read from user-token at start
  EXPECT_EQ(job.restart_policy, spec::RestartPolicy::OnFailure);
  EXPECT_FALSE(notebook::notebookOf(spec::TrainJobSpec{}));
}

TEST(Notebook, NamesTokensAndPaths) {
  EXPECT_EQ(notebook::jobName("", "explore"), "nb-explore");
  EXPECT_EQ(notebook::jobName("Bob.Smith@lab", "x"), "nb-bob-smith-lab-x");
  EXPECT_THROW(notebook::jobName(std::string(60, 'a'), "explore"), std::invalid_argument);
  EXPECT_EQ(notebook::basePath("", "x"), "/notebooks/_/x/");
  EXPECT_EQ(notebook::jobOfUserToken("tynb.nb-alice-explore.abc123"), "nb-alice-explore");
  EXPECT_FALSE(notebook::jobOfUserToken("tynb.../etc.x"));
  EXPECT_FALSE(notebook::jobOfUserToken("alice-token"));
  EXPECT_TRUE(notebook::sameSecret("abc", "abc"));
  EXPECT_FALSE(notebook::sameSecret("abc", "abd"));
  EXPECT_FALSE(notebook::sameSecret("abc", "abcd"));
}

TEST(NotebookProxy, JupyterGetsItsTokenAndNoneOfTheServers) {
  http::Headers in{{"Authorization", "Bearer alice-token"},
                   {"Cookie", "trainyard_token=alice-token; _xsrf=abc"},
                   {"Origin", "http://127.0.0.1:8080"},
                   {"Host", "127.0.0.1:8080"},
                   {"Connection", "keep-alive"},
                   {"X-Forwarded-For", "6.6.6.6"},
                   {"Accept", "application/json"}};
  auto out = notebook::upstreamHeaders(in, "jtok", "10.0.0.7");
  auto get = [&](const std::string& k) {
    auto r = out.equal_range(k);
    std::vector<std::string> v;
    for (auto it = r.first; it != r.second; ++it) v.push_back(it->second);
    return v;
  };
  EXPECT_EQ(get("Authorization"), std::vector<std::string>{"token jtok"});
  EXPECT_EQ(get("Cookie"), std::vector<std::string>{"_xsrf=abc"});
  EXPECT_TRUE(get("Origin").empty());
  EXPECT_TRUE(get("Host").empty());
  EXPECT_TRUE(get("Connection").empty());
  EXPECT_EQ(get("X-Forwarded-For"), std::vector<std::string>{"10.0.0.7"});
  EXPECT_EQ(get("Accept"), std::vector<std::string>{"application/json"});
  EXPECT_TRUE(notebook::upstreamHeaders({{"Cookie", "trainyard_token=x"}}, "t", "a").count("Cookie") == 0);

  EXPECT_EQ(notebook::withoutAccessToken("/notebooks/a/b/tree?access_token=s3cret"), "/notebooks/a/b/tree");
  EXPECT_EQ(notebook::withoutAccessToken("/x?a=1&access_token=s&b=2"), "/x?a=1&b=2");
  EXPECT_EQ(notebook::withoutAccessToken("/x?a=1"), "/x?a=1");
  std::string head = notebook::websocketHead("GET", "/k/channels?session_id=1", 4242, {{"Authorization", "token t"}});
  EXPECT_EQ(head.rfind("GET /k/channels?session_id=1 HTTP/1.1\r\nHost: 127.0.0.1:4242\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Upgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(head.find("Authorization: token t\r\n\r\n"), std::string::npos);
}

TEST(NotebookProxy, AnswersLoseEveryTraceOfTheToken) {
  EXPECT_EQ(notebook::scrub(R"(<body data-jupyter-api-token="abc123"><a href="/tree?token=abc123">)", "abc123"),
            R"(<body data-jupyter-api-token=""><a href="/tree?token=">)");
  EXPECT_EQ(notebook::scrub("nothing here", "abc"), "nothing here");
  EXPECT_EQ(notebook::scrub("abcabc", "abc"), "");
  EXPECT_EQ(notebook::scrub("x", ""), "x");
  auto t = notebook::parseIsoUtc("2026-11-30T05:01:02.250000Z");
  ASSERT_TRUE(t);
  EXPECT_DOUBLE_EQ(*t, 1796014862.25);
  EXPECT_FALSE(notebook::parseIsoUtc("yesterday"));
}

#include "artifacts/run_record.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "util/command.h"
#include "util/files.h"

namespace trainyard::artifacts {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr size_t kMaxDiff = 16u << 20;  // a diff larger than this is cut (and says so)

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

json gitOf(const std::string& dir, const std::string& outputs_dir, int n) {
  auto head = util::runCommand({"git", "-C", dir, "rev-parse", "HEAD"}, std::chrono::seconds(30));
  if (!head.ok()) return {{"dir", dir}, {"note", "not a git working tree (or git is not installed)"}};
  json g = {{"dir", dir}, {"commit", trim(head.out)}};
  auto top = util::runCommand({"git", "-C", dir, "rev-parse", "--show-toplevel"}, std::chrono::seconds(30));
  if (top.ok()) g["root"] = trim(top.out);
  auto branch = util::runCommand({"git", "-C", dir, "rev-parse", "--abbrev-ref", "HEAD"}, std::chrono::seconds(30));
  if (branch.ok()) g["branch"] = trim(branch.out);
  auto status = util::runCommand({"git", "-C", dir, "status", "--porcelain", "--untracked-files=normal"},
                                 std::chrono::seconds(60));
  bool dirty = status.ok() && !trim(status.out).empty();
  g["dirty"] = dirty;
  if (dirty) {
    json untracked = json::array();
    std::istringstream lines(status.out);
    for (std::string line; std::getline(lines, line) && untracked.size() < 1000;)
      if (line.starts_with("?? ")) untracked.push_back(line.substr(3));
    if (!untracked.empty()) g["untracked"] = untracked;
    auto diff = util::runCommand({"git", "-C", dir, "diff", "HEAD", "--binary"}, std::chrono::seconds(60));
    if (diff.ok() && !outputs_dir.empty()) {
      std::error_code ec;
      fs::path d = fs::path(outputs_dir) / "trainyard";
      fs::create_directories(d, ec);
      fs::path file = d / fmt::format("git-{}.diff", n);
      std::ofstream out(file, std::ios::trunc | std::ios::binary);
      out.write(diff.out.data(), static_cast<std::streamsize>(std::min(diff.out.size(), kMaxDiff)));
      if (out) g["diff"] = fs::relative(file, outputs_dir).string();  // an output: listed and downloadable
      if (diff.out.size() > kMaxDiff) g["diffTruncated"] = true;
    }
  }
  return g;
}

// "torch-2.0.1.dist-info" -> {"torch", "2.0.1"}.
json packageVersions(const std::string& root) {
  static const std::set<std::string> kWanted = {"torch", "numpy", "tensorflow", "jax", "scikit_learn", "scipy",
                                                "transformers", "pandas", "torchvision", "onnxruntime"};
  static const std::regex kInfo(R"(^([A-Za-z0-9_.]+)-([0-9][^-]*?)(?:\.dist-info|\.egg-info|-py[0-9.]+\.egg-info)$)");
  json out = json::object();
  std::error_code ec;
  for (const char* dir : {"python3/dist-packages", "python3.11/dist-packages", "python3.11/site-packages"}) {
    fs::path p = fs::path(root) / dir;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
      std::smatch m;
      std::string name = it->path().filename().string();
      if (!std::regex_match(name, m, kInfo)) continue;
      std::string pkg = m[1];
      std::replace(pkg.begin(), pkg.end(), '-', '_');
      std::string lower = pkg;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      if (kWanted.count(lower) && !out.contains(lower)) out[lower] = m[2].str();
    }
  }
  return out;
}

std::string pythonVersion(const std::string& root) {
  // Debian's python3 names its version in its standard library's directory.
  std::error_code ec;
  std::string best;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (std::regex_match(name, std::regex(R"(python3\.[0-9]+)")) && fs::exists(it->path() / "os.py")) best = max(best, name);
  }
  return best.empty() ? "" : best.substr(6);
}

}  // namespace

json machineVersions(const std::string& python_root) {
  json versions = packageVersions(python_root);
  if (std::string py = pythonVersion(python_root); !py.empty()) versions["python"] = py;
  return versions;
}

bool looksSecret(const std::string& name) {
  std::string u = name;
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return std::toupper(c); });
  for (const char* s : {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "PRIVATE"})
    if (u.find(s) != std::string::npos) return true;
  // KEY, API_KEY, AWS_ACCESS_KEY_ID; not KEYS (a count) or MONKEY-like words.
  static const std::regex kKey(R"((^|_)KEY($|_|ID))");
  return std::regex_search(u, kKey);
}

std::string runRecordFile(const std::string& log_dir) { return (fs::path(log_dir) / "record.json").string(); }

json readRunRecord(const std::string& log_dir) {
  if (log_dir.empty()) return nullptr;
  json j = json::parse(util::readFrom(runRecordFile(log_dir), 0, 8u << 20), nullptr, false);
  return j.is_object() ? j : json(nullptr);
}

json gatherRunRecord(const spec::TrainJobSpec& spec, const RecordContext& ctx) {
  json r;
  r["recordedAt"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  json resolved;
  spec::to_json(resolved, spec);
  if (resolved.contains("roles") && resolved["roles"].is_array())
    for (auto& role : resolved["roles"])
      if (role.contains("env") && role["env"].is_array())
        for (auto& kv : role["env"])
          if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && looksSecret(kv[0].get<std::string>()))
            kv[1] = "<redacted>";
  r["spec"] = resolved;
  r["backend"] = ctx.backend;
  if (!ctx.nodes.empty()) r["nodes"] = ctx.nodes;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  r["submitHost"] = host;
  json roles = json::array(), images = json::array(), git = json::array();
  std::set<std::string> dirs, seen_images;
  std::string seed;
  for (const auto& role : spec.roles) {
    json env = json::object();
    for (const auto& [k, v] : role.env) {
      env[k] = looksSecret(k) ? "<redacted>" : v;
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      if ((lower == "seed" || lower == "random_seed" || lower == "pythonhashseed") && seed.empty()) seed = v;
    }
    std::vector<std::string> argv = role.command;
    argv.insert(argv.end(), role.args.begin(), role.args.end());
    for (size_t i = 0; i + 1 < argv.size() && seed.empty(); ++i)
      if (argv[i] == "--seed" || argv[i] == "-seed") seed = argv[i + 1];
    for (const auto& a : argv)
      if (seed.empty() && a.starts_with("--seed=")) seed = a.substr(7);
    json jr = {{"role", role.name}, {"replicas", role.replicas}, {"command", argv}, {"env", env},
               {"workingDir", role.working_dir}};
    if (!role.image.empty()) jr["image"] = role.image;
    roles.push_back(jr);
    if (!role.working_dir.empty() && dirs.insert(role.working_dir).second)
      git.push_back(gitOf(role.working_dir, ctx.outputs_dir, static_cast<int>(git.size())));
    if (!role.image.empty() && seen_images.insert(role.image).second) {
      json im = {{"image", role.image}};
      if (!ctx.podman.empty()) {
        auto in = util::runCommand({ctx.podman, "image", "inspect", "--format", "{{.Digest}} {{.Id}}", role.image},
                                   std::chrono::seconds(60));
        std::istringstream words(in.out);
        std::string digest, id;
        if (in.ok() && (words >> digest >> id)) im["digest"] = digest, im["id"] = id;
        else im["note"] = "not present on this machine when the job started";
      }
      images.push_back(im);
    }
  }
  r["roles"] = roles;
  if (!images.empty()) r["images"] = images;
  if (!spec.build.context.empty()) {
    // Built when it runs: the context is the image's source, its git state kept like code's.
    r["build"] = {{"context", spec.build.context}, {"containerfile", spec.build.containerfile}};
    if (dirs.insert(spec.build.context).second)
      git.push_back(gitOf(spec.build.context, ctx.outputs_dir, static_cast<int>(git.size())));
  }
  r["git"] = git;
  if (!seed.empty()) r["seed"] = seed;
  r["versions"] = machineVersions(ctx.python_root);  // this machine's: an image's own are in the image its digest names
  return r;
}

Rerun rerunOf(const std::string& name, spec::TrainJobSpec spec, const json& rec) {
  Rerun out;
  auto warn = [&](std::string w) { out.warnings.push_back(std::move(w)); };
  if (!rec.is_object()) {
    warn(fmt::format("{} has no run record (it never started): its stored spec runs as it is", name));
  } else {
    for (auto& role : spec.roles) {
      if (role.image.empty()) continue;
      for (const auto& im : rec.value("images", json::array()))
        if (im.value("image", "") == role.image && im.contains("digest") && im["digest"].is_string())
          role.image = spec::imageRepository(role.image) + "@" + im["digest"].get<std::string>();  // the digest names it
    }
    bool any_image = std::any_of(spec.roles.begin(), spec.roles.end(), [](const auto& r) { return !r.image.empty(); });
    if (!any_image) {
      // The environment is this machine's: say what changed since.
      json now = machineVersions();
      const json then = rec.value("versions", json::object());
      for (const auto& [k, v] : then.items())
        if (v.is_string() && now.value(k, "") != v.get<std::string>())
          warn(fmt::format("no image pins the environment, and {} was {} then, {} now", k, v.get<std::string>(),
                           now.value(k, "(not installed)")));
    }
    for (const auto& git : rec.value("git", json::array())) {
      if (!git.contains("commit")) continue;
      std::string dir = git.value("dir", ""), then = git.value("commit", "");
      auto head = util::runCommand({"git", "-C", dir, "rev-parse", "HEAD"}, std::chrono::seconds(30));
      std::string now_commit = head.ok() ? trim(head.out) : "";
      auto status = util::runCommand({"git", "-C", dir, "status", "--porcelain"}, std::chrono::seconds(60));
      if (now_commit != then)
        warn(fmt::format("{} is at {} now; the job ran at {} (git -C {} checkout {})", dir,
                         now_commit.empty() ? "no commit" : now_commit.substr(0, 12), then.substr(0, 12), dir, then));
      if (git.value("dirty", false))
        warn(fmt::format("{} had uncommitted changes then{}", dir,
                         git.contains("diff") ? fmt::format(" (kept among its outputs: {})", git.value("diff", "")) : ""));
      if (status.ok() && !trim(status.out).empty()) warn(fmt::format("{} has uncommitted changes now", dir));
    }
  }
  spec.name = name.substr(0, 57) + "-rerun";  // a name stays a DNS-1123 label (63)
  spec.labels["trainyard.dev/rerun-of"] = name;
  out.spec = std::move(spec);
  return out;
}

}  // namespace trainyard::artifacts

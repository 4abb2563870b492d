#include "k8s/kubeconfig.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace trainyard::k8s {
namespace {

std::string readAll(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read {}", path, what));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string base64(const std::string& text, const std::string& where) {
  std::string in;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) in += c;
  if (in.size() % 4 != 0) throw std::runtime_error(where + ": not base64");
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) throw std::runtime_error(where + ": not base64");
  size_t pad = in.size() >= 2 && in[in.size() - 1] == '=' ? (in[in.size() - 2] == '=' ? 2 : 1) : 0;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// The entry `name` of a kubeconfig list (clusters, users, contexts).
YAML::Node named(const YAML::Node& root, const std::string& list, const std::string& name, const std::string& file) {
  const YAML::Node& items = root[list];
  if (items && items.IsSequence())
    for (const auto& item : items)
      if (item["name"] && item["name"].as<std::string>() == name) return item;
  throw std::runtime_error(fmt::format("{}: {}: no entry named \"{}\"", file, list, name));
}

std::string str(const YAML::Node& n, const std::string& key) {
  return n && n[key] && n[key].IsScalar() ? n[key].as<std::string>() : "";
}

}  // namespace

KubeConfig loadKubeConfig(const std::string& path_in, const std::string& context_in) {
  std::string path = path_in;
  if (path.empty())
    if (const char* env = std::getenv("KUBECONFIG"); env && *env) path = std::string(env).substr(0, std::string(env).find(':'));
  if (path.empty())
    if (const char* home = std::getenv("HOME")) path = std::string(home) + "/.kube/config";
  if (path.empty()) throw std::runtime_error("no kubeconfig: set --kubeconfig or KUBECONFIG");
  YAML::Node root;
  try {
    root = YAML::Load(readAll(path, "the kubeconfig"));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap()) throw std::runtime_error(path + ": expected a kubeconfig (a map with clusters, users, contexts)");
  std::string context = context_in.empty() ? str(root, "current-context") : context_in;
  if (context.empty()) throw std::runtime_error(path + ": current-context: not set (pass --context)");
  auto dir = std::filesystem::path(path).parent_path();
  auto relative = [&](const std::string& p) { return std::filesystem::path(p).is_absolute() ? p : (dir / p).string(); };

  YAML::Node ctx = named(root, "contexts", context, path)["context"];
  KubeConfig c;
  c.source = path;
  if (!str(ctx, "namespace").empty()) c.ns = str(ctx, "namespace");
  std::string cluster_name = str(ctx, "cluster"), user_name = str(ctx, "user");
  if (cluster_name.empty()) throw std::runtime_error(fmt::format("{}: contexts.{}.context.cluster: not set", path, context));

  YAML::Node cluster = named(root, "clusters", cluster_name, path)["cluster"];
  std::string where = fmt::format("{}: clusters.{}.cluster", path, cluster_name);
  c.server = str(cluster, "server");
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0)
    throw std::runtime_error(fmt::format("{}.server: expected an https:// URL, got \"{}\"", where, c.server));
  c.insecure = str(cluster, "insecure-skip-tls-verify") == "true";
  if (auto d = str(cluster, "certificate-authority-data"); !d.empty()) c.ca_pem = base64(d, where + ".certificate-authority-data");
  else if (auto f = str(cluster, "certificate-authority"); !f.empty()) c.ca_pem = readAll(relative(f), "certificate-authority");

  if (!user_name.empty()) {
    YAML::Node user = named(root, "users", user_name, path)["user"];
    std::string uw = fmt::format("{}: users.{}.user", path, user_name);
    if (user && (user["exec"] || user["auth-provider"]))
      throw std::runtime_error(uw + ": exec and auth-provider plugins are not supported; use a token or a client certificate");
    c.token = str(user, "token");
    if (c.token.empty())
      if (auto f = str(user, "tokenFile"); !f.empty()) c.token = readAll(relative(f), "tokenFile");
    while (!c.token.empty() && std::isspace(static_cast<unsigned char>(c.token.back()))) c.token.pop_back();
    if (auto d = str(user, "client-certificate-data"); !d.empty()) c.client_cert_pem = base64(d, uw + ".client-certificate-data");
    else if (auto f = str(user, "client-certificate"); !f.empty()) c.client_cert_pem = readAll(relative(f), "client-certificate");
    if (auto d = str(user, "client-key-data"); !d.empty()) c.client_key_pem = base64(d, uw + ".client-key-data");
    else if (auto f = str(user, "client-key"); !f.empty()) c.client_key_pem = readAll(relative(f), "client-key");
    if (c.client_cert_pem.empty() != c.client_key_pem.empty())
      throw std::runtime_error(uw + ": a client certificate needs its key (and a key its certificate)");
  }
  return c;
}

std::optional<KubeConfig> inClusterConfig() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  const std::string sa = "/var/run/secrets/kubernetes.io/serviceaccount";
  if (!host || !port || !std::filesystem::exists(sa + "/token")) return std::nullopt;
  KubeConfig c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = fmt::format("https://{}:{}", h, port);
  c.token = readAll(sa + "/token", "the service account token");
  c.ca_pem = readAll(sa + "/ca.crt", "the service account CA");
  if (std::filesystem::exists(sa + "/namespace")) c.ns = readAll(sa + "/namespace", "the namespace");
  c.source = sa;
  return c;
}

KubeConfig resolveKubeConfig(const std::string& path, const std::string& context) {
  if (path.empty())
    if (auto in = inClusterConfig()) return *in;
  return loadKubeConfig(path, context);
}

}  // namespace trainyard::k8s

#include "serving/http_api.h"

#include <chrono>

#include <fmt/format.h>
#include "http/server.h"
#include <nlohmann/json.hpp>
#include "serving/simdjson_util.h"

#include <array>
#include <map>
#include <set>

namespace trainyard::serving {
namespace {
using nlohmann::json;
// An inference request's body; the tensors it declares are bounded again
// by the data it holds and by max_batch_size (tensor.h).
constexpr size_t kMaxInferBody = 64 << 20;
using Clock = std::chrono::steady_clock;

struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& msg) : std::runtime_error(msg), status(status) {}
  int status;
};

void reply(http::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The signature's shape without the batch dimension.
std::vector<int64_t> inner(const TensorSpec& s) {
  return s.shape.size() > 1 ? std::vector<int64_t>(s.shape.begin() + 1, s.shape.end()) : std::vector<int64_t>{};
}

void checkInner(const TensorSpec& s, const std::vector<int64_t>& got, const std::string& what) {
  auto want = inner(s);
  bool ok = want.size() == got.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 || want[i] == got[i];
  if (!ok)
    throw TensorError(s.name, fmt::format("input \"{}\": {} has shape {}, expected {} per instance (signature {})", s.name, what,
                                          shapeText(got), shapeText(want), shapeText(s.shape)));
}

void checkBatch(const ServedVersion& v, int64_t rows) {
  if (rows < 1) throw HttpError(400, "the request holds no instances");
  int max = v.config.max_batch_size;
  if (max > 1 && rows > max)
    throw HttpError(400, fmt::format("{} instances in one request; model \"{}\" takes at most max_batch_size={}", rows, v.model, max));
}

const TensorSpec& specFor(const ServedVersion& v, const std::string& name) {
  for (const auto& s : v.inputs)
    if (s.name == name) return s;
  std::string names;
  for (const auto& s : v.inputs) names += (names.empty() ? "" : ", ") + s.name;
  throw TensorError(name, fmt::format("model \"{}\" has no input \"{}\" (inputs: {})", v.model, name, names));
}

using simdjson::dom::element;
using simdjson::dom::element_type;

std::optional<element> field(const element& obj, const char* key) {
  element v;
  if (obj.type() != element_type::OBJECT || obj[key].get(v)) return std::nullopt;
  return v;
}

int64_t arraySize(const element& e) { return static_cast<int64_t>(arrayOf(e).size()); }

// TF-Serving row format: "instances" is a list; with one input each
// instance is that input's value, with several an object by input name.
std::vector<HostTensor> fromInstances(const ServedVersion& v, const element& instances) {
  if (instances.type() != element_type::ARRAY) throw HttpError(400, "\"instances\" must be a list");
  int64_t n = arraySize(instances);
  checkBatch(v, n);
  auto first = arrayOf(instances).at(0).value();
  bool by_name = first.type() == element_type::OBJECT;
  if (v.inputs.size() > 1 && !by_name) throw HttpError(400, "the model has several inputs: each instance must be an object by input name");
  std::vector<HostTensor> out;
  for (const auto& s : v.inputs) {
    HostTensor t{s.name, s.dtype, {}, {}};
    if (!by_name) {
      t.shape = jsonShape(instances, s.name);
      checkInner(s, std::vector<int64_t>(t.shape.begin() + 1, t.shape.end()), "an instance");
      fillFromJson(t, instances);
    } else {
      auto v0 = field(first, s.name.c_str());
      if (!v0) throw TensorError(s.name, fmt::format("each instance must be an object with input \"{}\"", s.name));
      auto row = v0->type() == element_type::ARRAY ? jsonShape(*v0, s.name) : std::vector<int64_t>{};
      checkInner(s, row, "an instance");
      t.shape = {n};
      t.shape.insert(t.shape.end(), row.begin(), row.end());
      int64_t k = 0;
      for (element inst : arrayOf(instances)) {
        auto val = field(inst, s.name.c_str());
        if (!val) throw TensorError(s.name, fmt::format("each instance must be an object with input \"{}\"", s.name));
        auto shape = val->type() == element_type::ARRAY ? jsonShape(*val, s.name) : std::vector<int64_t>{};
        if (shape != row) throw TensorError(s.name, fmt::format("input \"{}\": instances differ in shape", s.name));
        k = appendValues(t, *val, k);
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

// TF-Serving columnar format: "inputs" is the value (one input) or an
// object by input name, each with the batch dimension first.
std::vector<HostTensor> fromColumns(const ServedVersion& v, const element& inputs) {
  std::vector<HostTensor> out;
  int64_t rows = -1;
  for (const auto& s : v.inputs) {
    element val = inputs;
    if (inputs.type() == element_type::OBJECT) {
      auto f = field(inputs, s.name.c_str());
      if (!f) throw TensorError(s.name, fmt::format("\"inputs\" has no \"{}\"", s.name));
      val = *f;
    } else if (v.inputs.size() > 1) {
      throw HttpError(400, "the model has several inputs: \"inputs\" must be an object by input name");
    }
    HostTensor t{s.name, s.dtype, jsonShape(val, s.name), {}};
    if (t.shape.empty()) throw TensorError(s.name, fmt::format("input \"{}\": expected a list with the batch first", s.name));
    checkInner(s, std::vector<int64_t>(t.shape.begin() + 1, t.shape.end()), "each row");
    if (rows >= 0 && t.shape[0] != rows) throw TensorError(s.name, "inputs disagree on the batch size");
    rows = t.shape[0];
    fillFromJson(t, val);
    out.push_back(std::move(t));
  }
  checkBatch(v, rows);
  return out;
}

// KServe V2: inputs[{name, shape, datatype, data}], data flat or nested.
std::vector<HostTensor> fromV2(const ServedVersion& v, const element& body) {
  auto inputs = field(body, "inputs");
  if (!inputs || inputs->type() != element_type::ARRAY)
    throw HttpError(400, "expected {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}");
  std::map<std::string, HostTensor> got;
  for (element in : arrayOf(*inputs)) {
    auto nm = field(in, "name");
    if (!nm || nm->type() != element_type::STRING) throw HttpError(400, "each input needs a \"name\"");
    std::string name(nm->get_string().value());
    const TensorSpec& s = specFor(v, name);
    auto dtf = field(in, "datatype");
    if (!dtf || dtf->type() != element_type::STRING)
      throw TensorError(name, fmt::format("input \"{}\": \"datatype\" is required ({})", name, serving::name(s.dtype)));
    std::string dts(dtf->get_string().value());
    auto dt = dataTypeFromName(dts);
    if (!dt) throw TensorError(name, fmt::format("input \"{}\": unknown datatype \"{}\"", name, dts));
    if (*dt != s.dtype)
      throw TensorError(name, fmt::format("input \"{}\": datatype {} but the model expects {}", name, serving::name(*dt), serving::name(s.dtype)));
    auto shape = field(in, "shape");
    if (!shape || shape->type() != element_type::ARRAY || arraySize(*shape) == 0)
      throw TensorError(name, fmt::format("input \"{}\": \"shape\" is required, e.g. {}", name, shapeText(s.shape)));
    HostTensor t{name, *dt, {}, {}};
    for (element d : arrayOf(*shape)) {
      if (d.type() != element_type::INT64 || d.get_int64().value() < 0)
        throw TensorError(name, fmt::format("input \"{}\": bad shape {}", name, simdjson::minify(*shape)));
      t.shape.push_back(d.get_int64().value());
    }
    if (t.shape.size() != s.shape.size())
      throw TensorError(name, fmt::format("input \"{}\": shape {} has {} dimensions, the model expects {} ({})", name,
                                          shapeText(t.shape), t.shape.size(), s.shape.size(), shapeText(s.shape)));
    checkInner(s, std::vector<int64_t>(t.shape.begin() + 1, t.shape.end()), "the request");
    checkBatch(v, t.shape[0]);  // before the data is read, let alone allocated
    auto data = field(in, "data");
    if (!data) throw TensorError(name, fmt::format("input \"{}\": \"data\" is required", name));
    fillFromJson(t, *data);
    got[name] = std::move(t);
  }
  std::vector<HostTensor> out;
  int64_t rows = -1;
  for (const auto& s : v.inputs) {
    auto it = got.find(s.name);
    if (it == got.end()) throw TensorError(s.name, fmt::format("input \"{}\" is missing", s.name));
    if (rows >= 0 && it->second.shape[0] != rows) throw TensorError(s.name, "inputs disagree on the batch size");
    rows = it->second.shape[0];
    out.push_back(std::move(it->second));
  }
  checkBatch(v, rows);
  return out;
}

void appendString(std::string& out, std::string_view s) { out += json(std::string(s)).dump(); }

// {"name": value, ...} for every output, each value written by `value`.
template <typename F>
void appendByName(std::string& out, const std::vector<HostTensor>& outs, F&& value) {
  out += '{';
  for (size_t k = 0; k < outs.size(); ++k) {
    if (k) out += ',';
    appendString(out, outs[k].name);
    out += ':';
    value(outs[k]);
  }
  out += '}';
}

json tfSignature(const std::vector<TensorSpec>& specs) {
  json out = json::object();
  for (const auto& s : specs) {
    json dims = json::array();
    for (auto d : s.shape) dims.push_back({{"size", std::to_string(d)}});
    out[s.name] = {{"dtype", tfName(s.dtype)}, {"tensor_shape", {{"dim", dims}, {"unknown_rank", false}}}, {"name", s.name}};
  }
  return out;
}

json v2Specs(const std::vector<TensorSpec>& specs) {
  json out = json::array();
  for (const auto& s : specs) out.push_back({{"name", s.name}, {"datatype", name(s.dtype)}, {"shape", s.shape}});
  return out;
}

std::optional<int64_t> versionArg(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s.find_first_not_of("0123456789") != std::string::npos || s.size() > 15)
    throw HttpError(400, fmt::format("version must be a number, got \"{}\"", s));
  return std::stoll(s);
}

class Api {
 public:
  Api(ModelManager& m, api::MetricsRegistry& r) : models(m), metrics(r) {}
  ModelManager& models;
  api::MetricsRegistry& metrics;

  std::shared_ptr<ServedVersion> find(const std::string& model, const std::string& version, const std::string& label) {
    try {
      return models.find(model, versionArg(version), label.empty() ? std::nullopt : std::optional<std::string>(label));
    } catch (const std::out_of_range& e) {
      throw HttpError(404, e.what());
    }
  }

  // Parse, queue, compute, serialize; `parse` and `serialize` are the protocol.
  void infer(const http::Request& req, http::Response& res, const std::shared_ptr<ServedVersion>& v,
             const std::function<std::vector<HostTensor>(const element&)>& parse,
             const std::function<void(const element&, std::vector<HostTensor>&, std::string&)>& serialize) {
    auto t0 = Clock::now();
    // Label sets rendered once per version, not per request.
    thread_local std::map<std::pair<std::string, int64_t>, std::array<std::string, 3>> keys;
    auto& k = keys[{v->model, v->version}];
    if (k[0].empty()) {
      api::Labels mv{{"model", v->model}, {"version", std::to_string(v->version)}};
      k[0] = api::MetricsRegistry::key(mv);
      mv.push_back({"outcome", "success"});
      k[1] = api::MetricsRegistry::key(mv);
      mv.back().second = "failure";
      k[2] = api::MetricsRegistry::key(mv);
    }
    auto fail = [&](int status, const std::string& msg) {
      metrics.counterAddKey("trainyard_inference_requests_total", k[2]);
      reply(res, status, {{"error", msg}});
    };
    thread_local simdjson::dom::parser parser;
    element body;
    std::vector<HostTensor> inputs;
    try {
      if (auto err = parser.parse(req.body).get(body))
        return fail(400, fmt::format("the request is not valid JSON: {}", simdjson::error_message(err)));
      inputs = parse(body);
    } catch (const simdjson::simdjson_error& e) {
      return fail(400, fmt::format("the request is not what was expected: {}", e.what()));
    } catch (const TensorError& e) {
      return fail(400, e.what());
    } catch (const HttpError& e) {
      return fail(e.status, e.what());
    }
    auto t1 = Clock::now();
    auto fut = v->batcher->submit(std::move(inputs));
    if (!fut) {
      res.set_header("Retry-After", "1");
      return fail(429, fmt::format("model \"{}\" version {} is at capacity ({} requests queued); retry later", v->model, v->version,
                                   v->config.queue_capacity));
    }
    InferResult r = fut->get();
    auto t2 = Clock::now();
    if (!r.error.empty()) return fail(500, fmt::format("inference failed: {}", r.error));
    std::string text;
    text.reserve(256);
    serialize(body, r.outputs, text);
    auto t3 = Clock::now();
    res.status = 200;
    res.set_content(std::move(text), "application/json; charset=utf-8");
    double queue = r.queue_us / 1e6, compute = r.compute_us / 1e6;
    // Server-side overhead, as Triton reports it: parse + queue + serialize.
    res.set_header("X-Inference-Timing", fmt::format("parse_us={};queue_us={};compute_us={};serialize_us={};batch={}",
                                                     secs(t1 - t0) * 1e6, r.queue_us, r.compute_us, secs(t3 - t2) * 1e6, r.batch_rows));
    metrics.counterAddKey("trainyard_inference_requests_total", k[1]);
    metrics.observeKey("trainyard_inference_parse_seconds", k[0], secs(t1 - t0));
    metrics.observeKey("trainyard_inference_queue_seconds", k[0], queue);
    metrics.observeKey("trainyard_inference_compute_seconds", k[0], compute);
    metrics.observeKey("trainyard_inference_serialize_seconds", k[0], secs(t3 - t2));
    metrics.observeKey("trainyard_inference_request_seconds", k[0], secs(t3 - t0));
  }

  template <typename F>
  static auto guard(F f) {
    return [f](const http::Request& req, http::Response& res) {
      try {
        f(req, res);
      } catch (const HttpError& e) {
        reply(res, e.status, {{"error", e.what()}});
      } catch (const std::exception& e) {
        reply(res, 500, {{"error", e.what()}});
      }
    };
  }

  json tfStatus(const std::string& model, std::optional<int64_t> only) {
    std::vector<VersionStatus> all;
    try {
      all = models.status(model);
    } catch (const std::out_of_range& e) {
      throw HttpError(404, e.what());
    }
    json list = json::array();
    for (const auto& s : all) {
      if (only && s.version != *only) continue;
      list.push_back({{"version", std::to_string(s.version)}, {"state", s.state},
                      {"status", {{"error_code", s.error.empty() ? "OK" : "UNKNOWN"}, {"error_message", s.error}}}});
    }
    if (only && list.empty()) throw HttpError(404, fmt::format("model \"{}\" has no version {}", model, *only));
    return {{"model_version_status", list}};
  }
};

}  // namespace

void describeInferenceMetrics(api::MetricsRegistry& m) {
  const std::vector<double> fine = {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 0.5, 1, 5};
  for (const char* n : {"trainyard_inference_parse_seconds", "trainyard_inference_queue_seconds", "trainyard_inference_compute_seconds",
                        "trainyard_inference_serialize_seconds", "trainyard_inference_request_seconds"})
    m.buckets(n, fine);
  m.buckets("trainyard_inference_batch_size", {1, 2, 4, 8, 16, 32, 64, 128, 256});
  m.help("trainyard_inference_requests_total", "counter", "Inference requests by model, version and outcome");
  m.help("trainyard_inference_parse_seconds", "histogram", "Request parsing and validation time");
  m.help("trainyard_inference_queue_seconds", "histogram", "Time waiting in the batch queue");
  m.help("trainyard_inference_compute_seconds", "histogram", "Model execution time of the batch a request ran in");
  m.help("trainyard_inference_serialize_seconds", "histogram", "Response serialization time");
  m.help("trainyard_inference_request_seconds", "histogram", "Total server-side request time");
  m.help("trainyard_inference_batch_size", "histogram", "Rows per executed batch");
  m.help("trainyard_inference_queue_size", "gauge", "Requests waiting per model version");
}

void mountInferenceApi(http::Server& http, ModelManager& models, api::MetricsRegistry& metrics) {
  auto api = std::make_shared<Api>(models, metrics);
  using Req = const http::Request&;
  using Res = http::Response&;

  // ---- TF-Serving REST
  // /v1/models/{m}[/versions/{v}|/labels/{l}][/metadata]
  const std::string tf = R"(/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?)";
  http.Get(tf, Api::guard([api](Req req, Res res) {
    std::string m = req.matches[1], v = req.matches[2], l = req.matches[3];
    std::optional<int64_t> only = versionArg(v);
    if (!l.empty()) only = api->find(m, "", l)->version;
    reply(res, 200, api->tfStatus(m, only));
  }));
  http.Get(tf + "/metadata", Api::guard([api](Req req, Res res) {
    auto sv = api->find(req.matches[1], req.matches[2], req.matches[3]);
    reply(res, 200, {{"model_spec", {{"name", sv->model}, {"signature_name", ""}, {"version", std::to_string(sv->version)}}},
                     {"metadata", {{"signature_def", {{"signature_def", {{"serving_default", {
                         {"inputs", tfSignature(sv->inputs)}, {"outputs", tfSignature(sv->outputs)},
                         {"method_name", "tensorflow/serving/predict"}}}}}}}}}});
  }));
  http.Post(tf + ":predict", Api::guard([api](Req req, Res res) {
    auto sv = api->find(req.matches[1], req.matches[2], req.matches[3]);
    bool row = true;
    api->infer(req, res, sv,
        [&](const element& body) {
          if (body.type() != element_type::OBJECT) throw HttpError(400, "expected a JSON object with \"instances\" or \"inputs\"");
          auto inst = field(body, "instances"), cols = field(body, "inputs");
          if (inst && cols) throw HttpError(400, "give \"instances\" or \"inputs\", not both");
          if (inst) return fromInstances(*sv, *inst);
          if (cols) {
            row = false;
            return fromColumns(*sv, *cols);
          }
          throw HttpError(400, "expected \"instances\" (row format) or \"inputs\" (columnar format)");
        },
        [&](const element&, std::vector<HostTensor>& outs, std::string& out) {
          if (!row) {
            out += "{\"outputs\":";
            if (outs.size() == 1) appendJson(out, outs[0], true);
            else appendByName(out, outs, [&](const HostTensor& t) { appendJson(out, t, true); });
            out += '}';
            return;
          }
          out += "{\"predictions\":[";
          int64_t rows = outs[0].shape[0];
          for (int64_t i = 0; i < rows; ++i) {
            if (i) out += ',';
            if (outs.size() == 1) appendJsonRow(out, outs[0], i);
            else appendByName(out, outs, [&](const HostTensor& t) { appendJsonRow(out, t, i); });
          }
          out += "]}";
        });
  }), kMaxInferBody);
  http.Post(tf + ":(classify|regress)", Api::guard([](Req req, Res res) {
    reply(res, 400, {{"error", fmt::format("{} needs a TensorFlow Example signature; TorchScript models support :predict", req.matches[4].str())}});
  }));

  // ---- KServe V2 / Open Inference Protocol
  http.Get("/v2", Api::guard([](Req, Res res) {
    reply(res, 200, {{"name", "trainyard"}, {"version", "0.1.0"}, {"extensions", json::array()}});
  }));
  http.Get("/v2/health/live", [](Req, Res res) { reply(res, 200, {{"live", true}}); });
  http.Get("/v2/health/ready", [api](Req, Res res) {
    bool ready = api->models.ready();
    reply(res, ready ? 200 : 503, {{"ready", ready}});
  });
  const std::string v2 = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
  http.Get(v2, Api::guard([api](Req req, Res res) {
    auto sv = api->find(req.matches[1], req.matches[2], "");
    json versions = json::array();
    for (auto x : api->models.versions(sv->model)) versions.push_back(std::to_string(x));
    reply(res, 200, {{"name", sv->model}, {"versions", versions}, {"platform", sv->platform},
                     {"inputs", v2Specs(sv->inputs)}, {"outputs", v2Specs(sv->outputs)}});
  }));
  http.Get(v2 + "/ready", [api](Req req, Res res) {
    bool ready = true;
    try {
      api->find(req.matches[1], req.matches[2], "");
    } catch (const std::exception&) {
      ready = false;
    }
    reply(res, ready ? 200 : 503, {{"name", req.matches[1].str()}, {"ready", ready}});
  });
  http.Post(v2 + "/infer", Api::guard([api](Req req, Res res) {
    auto sv = api->find(req.matches[1], req.matches[2], "");
    api->infer(req, res, sv, [&](const element& body) { return fromV2(*sv, body); },
        [&](const element& body, std::vector<HostTensor>& outs, std::string& out) {
          out += "{\"model_name\":";
          appendString(out, sv->model);
          out += fmt::format(",\"model_version\":\"{}\"", sv->version);
          if (auto id = field(body, "id")) {
            out += ",\"id\":";
            out += simdjson::minify(*id);
          }
          // Requested outputs only, when the request names them.
          std::set<std::string> wanted;
          if (auto req_out = field(body, "outputs"); req_out && req_out->type() == element_type::ARRAY)
            for (element o : arrayOf(*req_out))
              if (auto n = field(o, "name"); n && n->type() == element_type::STRING) wanted.insert(std::string(n->get_string().value()));
          out += ",\"outputs\":[";
          bool first = true;
          for (const auto& t : outs) {
            if (!wanted.empty() && !wanted.count(t.name)) continue;
            if (!first) out += ',';
            first = false;
            out += "{\"name\":";
            appendString(out, t.name);
            out += fmt::format(",\"datatype\":\"{}\",\"shape\":{},\"data\":", name(t.dtype), json(t.shape).dump());
            appendJson(out, t, false);
            out += '}';
          }
          out += "]}";
        });
  }), kMaxInferBody);
}

}  // namespace trainyard::serving

// The inference protocols over HTTP, JSON shapes as published:
//   TF-Serving REST: GET /v1/models/{m}[/versions/{v}|/labels/{l}][/metadata],
//     POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict with "instances"
//     (row) or "inputs" (columnar), answering "predictions" / "outputs";
//     errors {"error": "..."}.
//   KServe V2 (Open Inference Protocol): /v2, /v2/health/live|ready,
//     /v2/models/{m}[/versions/{v}][/ready], POST .../infer.
// A full queue answers 429 at once. Per model and version it records
// request counts and parse/queue/compute/serialize/total durations and
// batch sizes in the registry (Prometheus).
#pragma once
#include <memory>

#include "api/prometheus.h"
#include "serving/manager.h"

namespace trainyard::http {
class Server;
}

namespace trainyard::serving {

void mountInferenceApi(http::Server& http, ModelManager& models, api::MetricsRegistry& metrics);

// Metric names and buckets used above (registered once per registry).
void describeInferenceMetrics(api::MetricsRegistry& metrics);

}  // namespace trainyard::serving

// Kubernetes resource quantities ("500m", "2", "1.5", "512Mi", "2G", "1e9").
// Pure functions; they return std::nullopt on anything that is not a valid,
// non-negative quantity so the caller can report the field path.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trainyard::spec {

// CPU in millicores: "2" -> 2000, "500m" -> 500, "0.25" -> 250.
std::optional<int64_t> parseCpuMillis(std::string_view text);

// Memory in bytes: binary (Ki Mi Gi Ti Pi Ei) and decimal (k K M G T P E)
// suffixes, plain numbers and exponents ("129e6").
std::optional<int64_t> parseMemoryBytes(std::string_view text);

std::string formatCpuMillis(int64_t millis);  // 2000 -> "2", 500 -> "500m"
std::string formatBytes(int64_t bytes);       // 2147483648 -> "2Gi"

}  // namespace trainyard::spec

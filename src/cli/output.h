// Rendering for CLI verbs: aligned tables, JSON and YAML (--output).
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "util/format.h"

namespace trainyard::cli {

enum class OutputFormat { Table, Json, Yaml };
// Throws std::invalid_argument for anything but table|json|yaml.
OutputFormat parseOutputFormat(const std::string& s);

void printTable(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows);
void printJson(std::ostream& out, const nlohmann::json& j);
void printYaml(std::ostream& out, const nlohmann::json& j);

// The queues of `trainyard get queues` (api::queuesJson's items).
void printQueues(std::ostream& out, const nlohmann::json& items);
// A job's outputs, as GET /api/v1/jobs/{name}/outputs gives them ({job, items, truncated}).
void printOutputs(std::ostream& out, const nlohmann::json& list);
// A job's run record (artifacts/run_record.h) as `describe job` shows it:
// git commits, images and digests, seed, versions. Nothing for null.
void printRunRecord(std::ostream& out, const nlohmann::json& record);

std::string formatTime(double epoch_seconds);    // local "2026-11-22 08:15:03", "-" for 0
std::string formatDuration(double seconds);      // "1h02m", "3m07s", "4.2s"
using util::formatValue;                         // shortest faithful form

}  // namespace trainyard::cli

// The shape of Trainyard's own resources (TrainJob, Experiment, Queue),
// written once: the spec parser takes the keys it accepts at each mapping
// from here, and `trainyard crds` turns it into the structural OpenAPI
// schemas of the CustomResourceDefinitions in deploy/crds/ (a test checks
// that the files are what this makes). What the parser checks beyond shape
// (ranges, units, cross-field rules) it still checks, with file:line:col.
#pragma once
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace trainyard::spec::schema {

enum class Type {
  String, Integer, Number, Boolean,
  Object,       // `fields`, closed
  Map,          // any keys, each value `fields[0]`
  List,         // items `fields[0]`
  IntOrString,  // 2 or "500m"
  Any,          // several shapes the parser tells apart (a command as a string or a list...)
};

struct Field {
  std::string name;
  Type type = Type::Any;
  std::string description;
  std::vector<Field> fields;
  std::vector<std::string> values;  // String: the allowed values
};

// "TrainJob", "Experiment", "Queue": the resource's `spec`.
const Field& specOf(const std::string& kind);

// The keys of the mapping at `path` below `spec` ("" is spec itself;
// "roles.*" a role, "volumes[]" a volume, "resources"...). Throws
// std::logic_error for a path the schema does not have: a parser bug.
std::set<std::string> keysAt(const std::string& kind, const std::string& path);

// A structural OpenAPI v3 schema (the CRD's openAPIV3Schema of `spec`).
nlohmann::json openApi(const Field& f);

// The CustomResourceDefinition of `kind` as the YAML in deploy/crds/.
std::string crdYaml(const std::string& kind);
const std::vector<std::string>& crdKinds();
std::string crdFileName(const std::string& kind);  // "trainyard.dev_trainjobs.yaml"

}  // namespace trainyard::spec::schema

// How a job was made, kept so that "what exactly produced this model?" has
// an answer months later, and `trainyard rerun` can make it again: the
// resolved spec (after overrides and trial parameters), each image and its
// digest, the git commit of each working directory and whether it was dirty
// (the diff kept among the job's outputs), the command lines, the
// environment (values of names that look like secrets redacted), the
// backend and nodes, the seed, and the versions of Python and of the
// framework packages, read from the files that say them (no user code runs).
// Gathered once, when the job first starts; kept as record.json beside its
// logs.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "spec/trainjob.h"

namespace trainyard::artifacts {

struct RecordContext {
  std::string backend;      // "local", "kubernetes", "slurm"
  std::string nodes;        // where the gang was placed ("n1,n2")
  std::string outputs_dir;  // where a dirty tree's diff goes (trainyard/git-<n>.diff)
  std::string podman;       // to read images' digests ("": none are read)
  std::string python_root = "/usr/lib";  // where Python's packages are looked for (tests point it elsewhere)
};

// The record (pure but for reading files and asking git/podman, which run
// no user code). Never throws: what cannot be read is left out, with a note.
nlohmann::json gatherRunRecord(const spec::TrainJobSpec& spec, const RecordContext& ctx);

// Python's and the framework packages' versions under `python_root`, read
// from their installed metadata: {"python": "3.11", "torch": "2.1.0", ...}.
nlohmann::json machineVersions(const std::string& python_root = "/usr/lib");

// True for environment names whose values are not kept: *TOKEN*, *SECRET*,
// *PASSWORD*, *PASSWD*, *KEY* (not *KEYS* of counts), *CREDENTIAL*, *AUTH*.
bool looksSecret(const std::string& name);

// What `trainyard rerun` runs: `spec` (the job's stored, resolved spec)
// with its images pinned to the digests `record` has for them, named
// NAME-rerun and labelled trainyard.dev/rerun-of; and warnings for what
// cannot be the same: a working tree that moved on or is dirty (then or
// now), and without an image, packages whose versions changed. `record`
// may be null (the job never started): the spec as stored, with a warning.
struct Rerun {
  spec::TrainJobSpec spec;
  std::vector<std::string> warnings;
};
Rerun rerunOf(const std::string& name, spec::TrainJobSpec spec, const nlohmann::json& record);

// Where a job's record is kept, in its log directory.
std::string runRecordFile(const std::string& log_dir);

// The record of a job, or null when it has none (yet).
nlohmann::json readRunRecord(const std::string& log_dir);

}  // namespace trainyard::artifacts

// libFuzzer: the spec parser (TrainJob, Experiment, Kubeflow and Katib kinds).
// Any input gives a spec or a SpecError; anything else is a bug.
#include <cstdint>
#include <string>

#include "spec/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto loaded = trainyard::spec::loadSpecString(text, "fuzz.yaml", "/tmp");
    if (loaded.experiment) (void)loaded.experiment->sampleTrial();
  } catch (const trainyard::spec::SpecError&) {
  }
  return 0;
}

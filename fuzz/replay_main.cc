// The fuzz targets without libFuzzer (the default build, g++): runs every
// file of a corpus directory through the target, then seeded mutations of
// each (byte flips, insertions, truncations, splices) up to about INPUTS in
// all, so the test suite smoke-runs the same code paths in seconds. Real
// fuzzing: scripts/fuzz.sh.
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
// An input that takes longer than 10 s is a hang: it is written to
// ./replay-timeout-input (to reproduce it) and the run aborts.
const std::string* current = nullptr;
void onAlarm(int) {
  int fd = ::open("replay-timeout-input", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0 && current) (void)!::write(fd, current->data(), current->size());
  const char msg[] = "input took over 10 s: saved to ./replay-timeout-input\n";
  (void)!::write(2, msg, sizeof msg - 1);
  std::abort();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [INPUTS]\n", argv[0]);
    return 2;
  }
  long budget = argc > 2 ? std::atol(argv[2]) : 20000;  // about this many inputs in all
  std::vector<std::string> inputs;
  for (const auto& e : std::filesystem::directory_iterator(argv[1])) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    inputs.push_back(buf.str());
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "%s: empty corpus\n", argv[1]);
    return 1;
  }
  long mutations = std::max<long>(1, budget / static_cast<long>(inputs.size()) - 1);
  std::mt19937_64 rng(20261129);
  size_t runs = 0;
  std::signal(SIGALRM, onAlarm);
  auto run = [&](const std::string& s) {
    current = &s;
    alarm(10);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    alarm(0);
    ++runs;
  };
  for (const auto& in : inputs) {
    run(in);
    for (int m = 0; m < mutations; ++m) {
      std::string s = in;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        size_t pos = s.empty() ? 0 : rng() % s.size();
        switch (rng() % 5) {
          case 0: if (!s.empty()) s[pos] = static_cast<char>(rng()); break;
          case 1: s.insert(pos, 1, "\"[]{}:,-#\n \\0123456789e.&*!|>"[rng() % 31]); break;
          case 2: s.resize(pos); break;
          case 3: { const auto& o = inputs[rng() % inputs.size()]; s.insert(pos, o.substr(0, rng() % (o.size() + 1))); break; }
          case 4: if (!s.empty()) s.erase(pos, 1 + rng() % 8); break;
        }
      }
      run(s);
    }
  }
  std::printf("%zu inputs from %zu corpus files: no crash\n", runs, inputs.size());
  return 0;
}

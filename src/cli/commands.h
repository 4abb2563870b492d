// The `trainyard` command line: parses argv and runs one verb. Returns the
// process exit code: 0 success, 1 the job failed, 2 bad input (spec or
// flags), 3 an internal or environment error, 130 cancelled.
#pragma once

namespace trainyard::cli {

int runMain(int argc, char** argv);

}  // namespace trainyard::cli

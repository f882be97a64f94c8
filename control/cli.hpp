// The `magline` command line: one subcommand per job (check, table, and later run, replay,
// plan). Parsing and rendering are functions of their arguments and streams, so tests drive them
// in-process; main() only passes argv and the standard streams.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace magline::cli {

// Exit codes.
inline constexpr int kOk = 0;
inline constexpr int kInvalid = 1;  // bad configuration or input; output not written
inline constexpr int kUsage = 2;    // bad command line

// Runs `magline ARGS...` (args excludes the program name). `out` is standard output: when it
// cannot be written (a full disk, /dev/full), one line on `err` says so and the status is
// kInvalid rather than kOk.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace magline::cli

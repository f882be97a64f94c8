// `magline completion bash|zsh`: a shell completion script generated from the option tables the
// command line parses with (Boost.Program_options descriptions), so that it cannot drift from
// them: every command, every long and short option, and for an option's value what its value
// name says: files for FILE (and IN.pcap, OUT.pcap), the words of "json|table", nothing else.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options/options_description.hpp>

namespace magline::cli {

struct CompletedCommand {
  std::string_view name;
  boost::program_options::options_description options;
  std::string_view words = {};  // what it takes besides options ("bash zsh")
};

// A bash script defining _magline and `complete -F _magline magline`.
std::string bash_completion(const std::vector<CompletedCommand>& commands);
// The same for zsh, through its bashcompinit.
std::string zsh_completion(const std::vector<CompletedCommand>& commands);

}  // namespace magline::cli

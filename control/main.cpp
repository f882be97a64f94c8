#include <iostream>
#include <string>
#include <vector>

#include "control/cli.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return magline::cli::run(args, std::cout, std::cerr);
}

// A network namespace of the test binary's own, entered from main() before any test runs
// (while the process has one thread, as a user namespace requires), so that the tests never
// touch the machine's interfaces: as root a plain one, else inside a user namespace where the
// kernel allows unprivileged ones.
#pragma once

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace magline::test {

// "" once in a namespace of its own; otherwise why not (the tests then skip).
inline std::string enter_own_netns() {
  if (::unshare(CLONE_NEWNET) == 0) return "";
  const int err = errno;
  std::string why = std::string("no network namespace of its own: unshare: ") + std::strerror(err);
  if (err == EPERM) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) return "";
    why += std::string(", and with a user namespace: ") + std::strerror(errno);
  }
  return why;
}

}  // namespace magline::test

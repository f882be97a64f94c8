// systemd's notification protocol (sd_notify(3)), written out rather than linking libsystemd:
// one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
// "@name" in the abstract namespace). Magline sends READY=1 once it forwards, WATCHDOG=1 while
// its workers progress, and STOPPING=1 when it stops (control/supervision.hpp decides when).
//
// Control thread only. A send never blocks (a datagram socket in a full queue fails at once).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/result.hpp"

namespace magline::control {

using EnvLookup = std::function<const char*(const char*)>;

class NotifySocket {
 public:
  // $NOTIFY_SOCKET, or nothing when it is unset or empty (not run by systemd: every send is a
  // no-op). Errors: an address systemd's clients would also refuse (not "/..." or "@...", or
  // longer than sockaddr_un holds).
  static Result<std::optional<NotifySocket>> from_environment(const EnvLookup& getenv);
  // `address`: "/path" or "@abstract".
  static Result<NotifySocket> at(std::string address);

  // Sends `state` ("READY=1", "WATCHDOG=1\n...") as one datagram. Errors: the socket call's.
  Result<void> send(std::string_view state) const;
  const std::string& address() const noexcept { return address_; }

 private:
  explicit NotifySocket(std::string address) : address_(std::move(address)) {}
  std::string address_;
};

// The watchdog period systemd asks for ($WATCHDOG_USEC), in microseconds, when it is meant for
// this process ($WATCHDOG_PID unset or equal to `pid`); nothing otherwise. Errors: a value that
// is not a positive integer.
Result<std::optional<uint64_t>> watchdog_usec(const EnvLookup& getenv, long pid);

}  // namespace magline::control

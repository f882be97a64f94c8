#include "control/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace magline::control {

Result<std::optional<NotifySocket>> NotifySocket::from_environment(const EnvLookup& getenv) {
  const char* v = getenv("NOTIFY_SOCKET");
  if (v == nullptr || *v == '\0') return std::optional<NotifySocket>();
  auto s = at(v);
  if (!s) return Error{"$NOTIFY_SOCKET: " + s.error().message};
  return std::optional<NotifySocket>(std::move(s).value());
}

Result<NotifySocket> NotifySocket::at(std::string address) {
  if (address.size() < 2 || (address[0] != '/' && address[0] != '@')) {
    return Error{"expected an absolute path or an @abstract name, got \"" + address + "\""};
  }
  // An abstract name is not NUL-terminated; a path needs room for its NUL.
  const size_t room = sizeof(sockaddr_un::sun_path) - (address[0] == '/' ? 1 : 0);
  if (address.size() > room) {
    return Error{"\"" + address + "\" is longer than a socket address holds (" +
                 std::to_string(room) + " bytes)"};
  }
  return NotifySocket(std::move(address));
}

Result<void> NotifySocket::send(std::string_view state) const {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, address_.data(), address_.size());
  if (address_[0] == '@') sa.sun_path[0] = '\0';
  // The abstract name's length is exactly its bytes; a path's includes the NUL (as sd_notify).
  const auto len =
      socklen_t(offsetof(sockaddr_un, sun_path) + address_.size() + (address_[0] == '/' ? 1 : 0));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error{std::strerror(errno)};
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&sa), len);
  const int e = errno;
  ::close(fd);
  if (sent < 0) return Error{std::strerror(e)};
  return {};
}

Result<std::optional<uint64_t>> watchdog_usec(const EnvLookup& getenv, long pid) {
  const char* usec = getenv("WATCHDOG_USEC");
  if (usec == nullptr || *usec == '\0') return std::optional<uint64_t>();
  // systemd sets WATCHDOG_PID for the main process; a child that inherited it must not ping.
  if (const char* p = getenv("WATCHDOG_PID"); p != nullptr && *p != '\0') {
    long owner = 0;
    const auto [end, ec] = std::from_chars(p, p + std::strlen(p), owner);
    if (ec != std::errc() || *end != '\0' || owner != pid) return std::optional<uint64_t>();
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(usec, usec + std::strlen(usec), v);
  if (ec != std::errc() || *end != '\0' || v == 0) {
    return Error{"$WATCHDOG_USEC: expected a positive integer, got \"" + std::string(usec) + "\""};
  }
  return std::optional<uint64_t>(v);
}

}  // namespace magline::control

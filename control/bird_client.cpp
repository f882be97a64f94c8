#include "control/bird_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

namespace magline::control {

namespace {

using Clock = std::chrono::steady_clock;

// BIRD streams long replies ("show route all" of a full table) without a bound of its own; the
// tables Magline asks about are small, so a reply this long is not one it meant to read.
constexpr size_t kMaxReply = size_t{16} << 20;

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// "CCCC-" or "CCCC ": the line's code, and whether it is the reply's last line.
struct Head {
  int code;
  bool last;
};

std::optional<Head> head(std::string_view line) noexcept {
  if (line.size() < 5 || (line[4] != '-' && line[4] != ' ')) return std::nullopt;
  int code = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (!is_digit(line[i])) return std::nullopt;
    code = code * 10 + (line[i] - '0');
  }
  return Head{code, line[4] == ' '};
}

// A line as an error message shows it: quoted, cut short, control characters escaped.
std::string excerpt(std::string_view line) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  for (const char c : line.substr(0, kMax)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += line.size() > kMax ? "\"..." : "\"";
  return out;
}

// Where the reply that begins `buf` ends: just past the '\n' of its last line ("CCCC text"),
// or of a line that cannot be part of a reply (parse_bird_reply then says what is wrong, rather
// than the wait for a last line timing out); nothing while neither has arrived whole. `scanned`:
// how far earlier calls looked, so that a long reply arriving in many reads is scanned once.
std::optional<size_t> reply_end(std::string_view buf, size_t& scanned) noexcept {
  for (;;) {
    const size_t eol = buf.find('\n', scanned);
    if (eol == std::string_view::npos) return std::nullopt;
    const std::string_view line = buf.substr(scanned, eol - scanned);
    scanned = eol + 1;
    const std::optional<Head> h = head(line);
    if (h ? h->last : line.empty() || (line[0] != ' ' && line[0] != '+')) return scanned;
  }
}

// One command's exchange on one connection, within one deadline.
class Session {
 public:
  Session(const std::string& path, std::chrono::milliseconds timeout)
      : path_(path), timeout_(timeout), deadline_(Clock::now() + timeout) {}
  ~Session() {
    if (fd_ >= 0) ::close(fd_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Result<void> connect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof addr.sun_path) {
      return fail("invalid socket path (1 to " + std::to_string(sizeof addr.sun_path - 1) +
                  " characters)");
    }
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail(std::string("socket: ") + std::strerror(errno));
    for (;;) {
      if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        return {};
      }
      // A unix socket connects at once or not at all: no EINPROGRESS, and no EINTR for a
      // non-blocking socket.
      const int err = errno;
      if (err == EAGAIN) {
        // The listener's backlog is full (BIRD busy, not accepting): a unix socket says so at
        // once rather than queueing the connection, and poll() cannot wait for room. Retry.
        const std::chrono::milliseconds left = remaining();
        if (left.count() <= 0) return timed_out("connecting (the socket's backlog is full)");
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(10)));
        continue;
      }
      return fail(std::string("cannot connect: ") + std::strerror(err) + " (is BIRD running?)");
    }
  }

  // The next reply whole, read up to its last line.
  Result<BirdReply> read_reply(const std::string& what) {
    for (;;) {
      if (const std::optional<size_t> end = reply_end(buf_, scanned_)) {
        Result<BirdReply> r = parse_bird_reply(std::string_view(buf_).substr(0, *end));
        // What follows stays for the next reply; there is none: BIRD speaks only when spoken
        // to, "+" printouts aside (after the `echo` command, which this client never sends).
        buf_.erase(0, *end);
        scanned_ = 0;
        if (!r) return fail(what + ": " + r.error().message);
        return r;
      }
      if (buf_.size() > kMaxReply) {
        return fail(what + ": longer than " + std::to_string(kMaxReply >> 20) + " MiB");
      }
      if (Result<void> w = await(POLLIN, what); !w) return w.error();
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return fail(what + ": " + std::strerror(errno));
      }
      if (n == 0) {
        return fail(what + ": connection closed before its end" +
                    (buf_.empty() ? std::string() : ", after " + excerpt(buf_)));
      }
      buf_.append(chunk, size_t(n));
    }
  }

  Result<void> send(std::string_view cmd) {
    std::string line(cmd);
    line += '\n';
    size_t off = 0;
    while (off < line.size()) {
      if (Result<void> w = await(POLLOUT, "sending '" + std::string(cmd) + "'"); !w) return w;
      // MSG_NOSIGNAL: BIRD going away mid-command is an EPIPE here, not a SIGPIPE for Magline.
      const ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return fail("sending '" + std::string(cmd) + "': " + std::strerror(errno));
      }
      off += size_t(n);
    }
    return {};
  }

  Error fail(const std::string& what) const { return Error{"BIRD at " + path_ + ": " + what}; }

 private:
  std::chrono::milliseconds remaining() const {
    // Rounded up: poll() would otherwise return a millisecond early, then wait 0 ms in a loop.
    return std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
  }

  Error timed_out(const std::string& what) const {
    return fail(what + ": no answer within " + std::to_string(timeout_.count()) + " ms");
  }

  // Waits for `events` on the socket until the deadline.
  Result<void> await(short events, const std::string& what) {
    for (;;) {
      const std::chrono::milliseconds left = remaining();
      if (left.count() <= 0) return timed_out(what);
      pollfd p{fd_, events, 0};
      const int n = ::poll(&p, 1, int(std::min<long long>(left.count(), 1 << 30)));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(what + ": poll: " + std::strerror(errno));
      }
      // POLLHUP/POLLERR too: the recv() or send() that follows says what happened.
      if (n > 0) return {};
    }
  }

  const std::string& path_;
  std::chrono::milliseconds timeout_;
  Clock::time_point deadline_;
  int fd_ = -1;
  std::string buf_;
  size_t scanned_ = 0;
};

}  // namespace

bool BirdReply::error() const noexcept {
  for (const Line& l : lines) {
    if (l.code >= 8000) return true;
  }
  return false;
}

std::string BirdReply::error_text() const {
  std::string out;
  for (const Line& l : lines) {
    if (l.code < 8000) continue;
    if (!out.empty()) out += "; ";
    out += l.text;
  }
  return out;
}

std::string BirdReply::text() const {
  std::string out;
  for (const Line& l : lines) {
    if (!out.empty()) out += '\n';
    out += l.text;
  }
  return out;
}

Result<BirdReply> parse_bird_reply(std::string_view text) {
  BirdReply reply;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      return Error{"incomplete reply: a line without its end, " + excerpt(text.substr(pos))};
    }
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line[0] == '+') continue;  // a spontaneous printout
    if (!line.empty() && line[0] == ' ') {
      if (reply.lines.empty()) {
        return Error{"a continuation line with nothing to continue: " + excerpt(line)};
      }
      reply.lines.push_back({reply.lines.back().code, std::string(line.substr(1))});
      continue;
    }
    const std::optional<Head> h = head(line);
    if (!h) return Error{"not a reply line (\"CCCC-\", \"CCCC \" or \" \"): " + excerpt(line)};
    reply.lines.push_back({h->code, std::string(line.substr(5))});
    if (h->last) {
      if (pos != text.size()) {
        return Error{"text after the reply's last line: " + excerpt(text.substr(pos))};
      }
      return reply;
    }
  }
  return Error{reply.lines.empty() ? std::string("empty reply")
                                   : "incomplete reply: no last line (\"CCCC text\") after " +
                                         excerpt(reply.lines.back().text)};
}

std::vector<BirdProtocol> parse_bird_protocols(const BirdReply& reply) {
  constexpr int kProtocolList = 1002;
  std::vector<BirdProtocol> out;
  for (const BirdReply::Line& l : reply.lines) {
    if (l.code != kProtocolList) continue;
    const std::string_view s = l.text;
    // The first fields, separated by blanks; `end` is where the last one taken ends.
    size_t end = 0;
    const auto next = [&]() -> std::string_view {
      const size_t b = s.find_first_not_of(" \t", end);
      if (b == std::string_view::npos) return {};
      const size_t e = std::min(s.find_first_of(" \t", b), s.size());
      end = e;
      return s.substr(b, e - b);
    };
    BirdProtocol p;
    std::string_view f[5];
    for (std::string_view& field : f)
      field = next();
    if (f[4].empty()) continue;
    p.name = f[0];
    p.proto = f[1];
    p.table = f[2];
    p.state = f[3];
    p.since = f[4];
    // "2026-12-05 01:47:00" (timeformat protocol iso long): the date, then the time.
    const bool date = f[4].size() == 10 && f[4][4] == '-' && f[4][7] == '-';
    if (date) {
      const size_t before = end;
      const std::string_view t = next();
      if (t.size() >= 5 && is_digit(t[0]) && t.find(':') != std::string_view::npos) {
        const size_t from = size_t(f[4].data() - s.data());
        p.since = s.substr(from, end - from);
      } else {
        end = before;
      }
    }
    const size_t b = s.find_first_not_of(" \t", end);
    if (b != std::string_view::npos) {
      p.info = s.substr(b, s.find_last_not_of(" \t") + 1 - b);
    }
    out.push_back(std::move(p));
  }
  return out;
}

BirdClient::BirdClient(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

Result<BirdReply> BirdClient::command(std::string_view cmd) const {
  Session s(path_, timeout_);
  // BIRD would take a second line as a second command, and its reply for this one's.
  if (cmd.find_first_of("\r\n") != std::string_view::npos) {
    return s.fail("a command is one line: " + excerpt(cmd));
  }
  if (Result<void> r = s.connect(); !r) return r.error();
  Result<BirdReply> greeting = s.read_reply("greeting");
  if (!greeting) return greeting.error();
  constexpr int kWelcome = 1;
  if (greeting->code() != kWelcome || greeting->error()) {
    return s.fail("not BIRD's greeting (\"0001 BIRD ... ready.\"): " + excerpt(greeting->text()));
  }
  if (Result<void> r = s.send(cmd); !r) return r.error();
  return s.read_reply("reply to '" + std::string(cmd) + "'");
}

Result<void> BirdClient::configure() const {
  Result<BirdReply> r = command("configure");
  if (!r) return r.error();
  const auto fail = [&](const std::string& what) {
    return Error{"BIRD at " + path_ + ": " + what};
  };
  if (r->error()) return fail("configuration refused: " + r->error_text());
  constexpr int kReconfigured = 3, kInProgress = 4, kQueued = 5;
  switch (r->code()) {
    case kReconfigured:
    case kInProgress:
    case kQueued:
      return {};
    default:
      return fail("configure: " + r->lines.back().text);
  }
}

Result<std::vector<BirdProtocol>> BirdClient::protocols() const {
  Result<BirdReply> r = command("show protocols");
  if (!r) return r.error();
  if (r->error()) return Error{"BIRD at " + path_ + ": show protocols: " + r->error_text()};
  return parse_bird_protocols(*r);
}

}  // namespace magline::control

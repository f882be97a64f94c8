// The BIRD control-socket client: parse_bird_reply and parse_bird_protocols on replies captured
// from BIRD 2.0.12 (birdc's socket, read raw), and on malformed ones; BirdClient against a fake
// BIRD, a unix socket in a temporary directory served by a thread of the test with canned
// replies: the exchange, reassembly of a reply arriving byte by byte, configure()'s verdicts,
// and the failures (no socket, nobody listening, silence, a connection cut short).
#include "control/bird_client.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace magline::control {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Captured from BIRD 2.0.12, byte for byte (what follows the command's '\n').
constexpr char kGreeting[] = "0001 BIRD 2.0.12 ready.\n";
constexpr char kConfigureOk[] =
    "0002-Reading configuration from /tmp/bx/bird.conf\n"
    "0003 Reconfigured\n";
// A BGP protocol's settings changed: BIRD restarts it, and answers before it is back.
constexpr char kConfigureInProgress[] =
    "0002-Reading configuration from bird.conf\n"
    "0004 Reconfiguration in progress\n";
constexpr char kConfigureSyntaxError[] =
    "0002-Reading configuration from bird.conf\n"
    "8002 bird.conf:13:36 syntax error, unexpected CF_SYM_UNDEFINED\n";
constexpr char kConfigureNoFile[] =
    "0002-Reading configuration from /tmp/bx/nonexist.conf\n"
    "8002 /tmp/bx/nonexist.conf: No such file or directory\n";
constexpr char kUnknownCommand[] = "9001 syntax error, unexpected CF_SYM_UNDEFINED\n";
constexpr char kNetworkNotFound[] = "8001 Network not found\n";
constexpr char kShowProtocols[] =
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     01:42:10.741  \n"
    " static_vips Static     master4    up     01:42:10.741  \n"
    " peer1      BGP        ---        start  01:42:10.741  Idle          \n"
    "0000 \n";
constexpr char kShowProtocolsEstablished[] =
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     01:43:24.945  \n"
    " static_vips Static     master4    up     01:43:24.945  \n"
    " static_other Static     master4    up     01:43:24.945  \n"
    " peer1      BGP        ---        up     01:43:29.558  Established   \n"
    "0000 \n";
// timeformat protocol iso long; the neighbour's address answers, nothing listens on port 179.
constexpr char kShowProtocolsIsoLong[] =
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     2026-12-05 01:47:00  \n"
    " static_vips Static     master4    up     2026-12-05 01:47:00  \n"
    " peer1      BGP        ---        start  2026-12-05 01:47:00  Active        Socket: "
    "Connection refused\n"
    " peer2      BGP        ---        down   2026-12-05 01:47:00  \n"
    "0000 \n";
constexpr char kShowProtocolsAll[] =
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-peer1      BGP        ---        start  01:42:10.741  Idle          \n"
    "1006-  BGP state:          Idle\n"
    "     Neighbor address: 198.18.0.254\n"
    "     Neighbor AS:      65000\n"
    "     Local AS:         65001\n"
    "   Channel ipv4\n"
    "     State:          DOWN\n"
    "     Table:          master4\n"
    "     Preference:     100\n"
    "     Input filter:   REJECT\n"
    "     Output filter:  (unnamed)\n"
    " \n"
    "0000 \n";
constexpr char kShowRoute[] =
    "1007-Table master4:\n"
    " 198.18.100.2/32      blackhole [static_vips 01:42:23.729] * (200)\n"
    " 198.18.100.1/32      blackhole [static_vips 01:42:10.741] * (200)\n"
    "0000 \n";
constexpr char kShowStatus[] =
    "1000-BIRD 2.0.12\n"
    "1011-Router ID is 198.18.0.1\n"
    " Hostname is vm\n"
    " Current server time is 2026-12-05 01:42:17.326\n"
    " Last reboot on 2026-12-05 01:42:10.741\n"
    " Last reconfiguration on 2026-12-05 01:42:13.320\n"
    "0013 Daemon is up and running\n";

using Lines = std::vector<std::pair<int, std::string>>;

Lines lines_of(const BirdReply& r) {
  Lines out;
  for (const BirdReply::Line& l : r.lines)
    out.emplace_back(l.code, l.text);
  return out;
}

BirdReply parsed(std::string_view text) {
  Result<BirdReply> r = parse_bird_reply(text);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r).value() : BirdReply{};
}

TEST(ParseBirdReply, Greeting) {
  const BirdReply r = parsed(kGreeting);
  EXPECT_EQ(lines_of(r), (Lines{{1, "BIRD 2.0.12 ready."}}));
  EXPECT_EQ(r.code(), 1);
  EXPECT_FALSE(r.error());
}

TEST(ParseBirdReply, ConfigureOk) {
  const BirdReply r = parsed(kConfigureOk);
  EXPECT_EQ(lines_of(r),
            (Lines{{2, "Reading configuration from /tmp/bx/bird.conf"}, {3, "Reconfigured"}}));
  EXPECT_EQ(r.code(), 3);
  EXPECT_FALSE(r.error());
  EXPECT_EQ(r.error_text(), "");
  EXPECT_EQ(parsed(kConfigureInProgress).code(), 4);
}

TEST(ParseBirdReply, ConfigureSyntaxError) {
  const BirdReply r = parsed(kConfigureSyntaxError);
  EXPECT_EQ(r.code(), 8002);
  EXPECT_TRUE(r.error());
  EXPECT_EQ(r.error_text(), "bird.conf:13:36 syntax error, unexpected CF_SYM_UNDEFINED");
  EXPECT_EQ(parsed(kConfigureNoFile).error_text(),
            "/tmp/bx/nonexist.conf: No such file or directory");
}

TEST(ParseBirdReply, ErrorsOfCommands) {
  const BirdReply unknown = parsed(kUnknownCommand);
  EXPECT_EQ(lines_of(unknown), (Lines{{9001, "syntax error, unexpected CF_SYM_UNDEFINED"}}));
  EXPECT_TRUE(unknown.error());
  const BirdReply missing = parsed(kNetworkNotFound);
  EXPECT_EQ(missing.code(), 8001);
  EXPECT_EQ(missing.error_text(), "Network not found");
}

TEST(ParseBirdReply, ContinuationsTakeThePreviousCode) {
  const BirdReply r = parsed(kShowRoute);
  EXPECT_EQ(lines_of(r),
            (Lines{{1007, "Table master4:"},
                   {1007, "198.18.100.2/32      blackhole [static_vips 01:42:23.729] * (200)"},
                   {1007, "198.18.100.1/32      blackhole [static_vips 01:42:10.741] * (200)"},
                   {0, ""}}));
  EXPECT_FALSE(r.error());
  EXPECT_EQ(r.text(),
            "Table master4:\n"
            "198.18.100.2/32      blackhole [static_vips 01:42:23.729] * (200)\n"
            "198.18.100.1/32      blackhole [static_vips 01:42:10.741] * (200)\n");

  const BirdReply status = parsed(kShowStatus);
  ASSERT_EQ(status.lines.size(), 7u);
  EXPECT_EQ(status.lines[0].code, 1000);
  EXPECT_EQ(status.lines[2].code, 1011);
  EXPECT_EQ(status.lines[2].text, "Hostname is vm");
  EXPECT_EQ(status.code(), 13);

  // A continuation's own leading blanks are text; a blank continuation is an empty line.
  const BirdReply all = parsed(kShowProtocolsAll);
  EXPECT_EQ(all.lines[3].code, 1006);
  EXPECT_EQ(all.lines[3].text, "    Neighbor address: 198.18.0.254");
  EXPECT_EQ(all.lines[all.lines.size() - 2].text, "");
}

TEST(ParseBirdReply, SpontaneousPrintoutsAreNotPartOfTheReply) {
  const BirdReply r = parsed("+ 2026-12-05 01:42:10.741 <INFO> Started\n0000 \n");
  EXPECT_EQ(lines_of(r), (Lines{{0, ""}}));
}

TEST(ParseBirdReply, RefusesWhatIsNotAWholeReply) {
  const auto error_of = [](std::string_view text) {
    Result<BirdReply> r = parse_bird_reply(text);
    EXPECT_FALSE(r.ok()) << "accepted: " << text;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_EQ(error_of(""), "empty reply");
  // Cut anywhere: in the last line, before it, in the middle of a line.
  EXPECT_NE(error_of("0001 BIRD 2.0.12 ready.").find("incomplete"), std::string::npos);
  EXPECT_NE(
      error_of(std::string_view(kShowProtocols, sizeof kShowProtocols - 8)).find("incomplete"),
      std::string::npos);
  EXPECT_NE(error_of("0002-Reading configuration from bird.conf\n").find("no last line"),
            std::string::npos);
  EXPECT_NE(error_of("0002-Reading configuration from bird.conf\n0003 Reconf").find("incomplete"),
            std::string::npos);
  // Not BIRD's lines.
  EXPECT_EQ(error_of("hello\n"), "not a reply line (\"CCCC-\", \"CCCC \" or \" \"): \"hello\"");
  EXPECT_NE(error_of("0001\n").find("not a reply line"), std::string::npos);
  EXPECT_NE(error_of("12345 x\n").find("not a reply line"), std::string::npos);
  EXPECT_NE(error_of("00a1 x\n").find("not a reply line"), std::string::npos);
  EXPECT_NE(error_of("0001-BIRD\nx\n0000 \n").find("not a reply line"), std::string::npos);
  EXPECT_NE(error_of("\n0000 \n").find("not a reply line"), std::string::npos);
  EXPECT_NE(error_of(" orphan\n0000 \n").find("nothing to continue"), std::string::npos);
  // Two replies, or anything after the last line.
  EXPECT_NE(error_of("0003 Reconfigured\n0000 \n").find("after the reply's last line"),
            std::string::npos);
  EXPECT_NE(error_of("0003 Reconfigured\n\n").find("after the reply's last line"),
            std::string::npos);
  // Messages escape what they quote.
  EXPECT_NE(error_of("\x01\x7f\n").find("\"\\x01\\x7f\""), std::string::npos);
}

TEST(ParseBirdProtocols, ShowProtocols) {
  const std::vector<BirdProtocol> ps = parse_bird_protocols(parsed(kShowProtocols));
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(ps[0].name, "device1");
  EXPECT_EQ(ps[0].proto, "Device");
  EXPECT_EQ(ps[0].table, "---");
  EXPECT_EQ(ps[0].state, "up");
  EXPECT_EQ(ps[0].since, "01:42:10.741");
  EXPECT_EQ(ps[0].info, "");
  EXPECT_EQ(ps[1].name, "static_vips");  // longer than its column: the columns shift
  EXPECT_EQ(ps[1].proto, "Static");
  EXPECT_EQ(ps[1].table, "master4");
  EXPECT_EQ(ps[1].state, "up");
  EXPECT_EQ(ps[2].name, "peer1");
  EXPECT_EQ(ps[2].proto, "BGP");
  EXPECT_EQ(ps[2].state, "start");
  EXPECT_EQ(ps[2].info, "Idle");
}

TEST(ParseBirdProtocols, Established) {
  const std::vector<BirdProtocol> ps = parse_bird_protocols(parsed(kShowProtocolsEstablished));
  ASSERT_EQ(ps.size(), 4u);
  EXPECT_EQ(ps[2].name, "static_other");
  EXPECT_EQ(ps[3].name, "peer1");
  EXPECT_EQ(ps[3].state, "up");
  EXPECT_EQ(ps[3].since, "01:43:29.558");
  EXPECT_EQ(ps[3].info, "Established");
}

TEST(ParseBirdProtocols, DateAndTimeAndALastError) {
  const std::vector<BirdProtocol> ps = parse_bird_protocols(parsed(kShowProtocolsIsoLong));
  ASSERT_EQ(ps.size(), 4u);
  EXPECT_EQ(ps[0].since, "2026-12-05 01:47:00");
  EXPECT_EQ(ps[0].info, "");
  EXPECT_EQ(ps[2].state, "start");
  EXPECT_EQ(ps[2].since, "2026-12-05 01:47:00");
  EXPECT_EQ(ps[2].info, "Active        Socket: Connection refused");
  EXPECT_EQ(ps[3].name, "peer2");
  EXPECT_EQ(ps[3].state, "down");
  EXPECT_EQ(ps[3].info, "");
}

TEST(ParseBirdProtocols, DetailsAndOtherRepliesAreSkipped) {
  const std::vector<BirdProtocol> ps = parse_bird_protocols(parsed(kShowProtocolsAll));
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].name, "peer1");
  EXPECT_EQ(ps[0].info, "Idle");
  // A date alone (an older "since" in the default format) is not joined with the info.
  const std::vector<BirdProtocol> old = parse_bird_protocols(
      parsed("1002-peer1      BGP        ---        start  2026-12-04    Active\n0000 \n"));
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].since, "2026-12-04");
  EXPECT_EQ(old[0].info, "Active");
  EXPECT_TRUE(parse_bird_protocols(parsed(kShowRoute)).empty());
  EXPECT_TRUE(parse_bird_protocols(parsed(kUnknownCommand)).empty());
  EXPECT_TRUE(parse_bird_protocols(parsed("1002-too few fields\n0000 \n")).empty());
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "magline-bird-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

sockaddr_un address(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  return sa;
}

// A socket bound to `path`, listening with room for `backlog` + 1 connections not accepted yet
// (Linux), or not listening at all (a negative `backlog`).
int listening_socket(const std::string& path, int backlog = 4) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_un sa = address(path);
  EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0)
      << std::strerror(errno);
  if (backlog >= 0) {
    EXPECT_EQ(::listen(fd, backlog), 0);
  }
  return fd;
}

// What the fake sends after a command: `text`, then it closes the connection, or with `hold`
// keeps it open, silent, until the client goes or the fake stops.
struct Canned {
  std::string text;
  bool hold = false;
};

// A BIRD of the test's making: one connection at a time, the greeting, one command line, then
// what `answer` says, sent `chunk` bytes at a time (0: at once).
class FakeBird {
 public:
  using Answer = std::function<Canned(const std::string& command)>;

  FakeBird(const std::string& path, Answer answer, std::string greeting = kGreeting,
           size_t chunk = 0)
      : answer_(std::move(answer)), greeting_(std::move(greeting)), chunk_(chunk) {
    listen_ = listening_socket(path);
    EXPECT_EQ(::pipe2(stop_, O_CLOEXEC), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeBird() {
    (void)!::write(stop_[1], "x", 1);
    thread_.join();
    for (const int fd : {listen_, stop_[0], stop_[1]})
      ::close(fd);
  }

  std::vector<std::string> commands() {
    const std::lock_guard lock(mu_);
    return commands_;
  }

 private:
  // Waits for `fd` to be readable; false when the fake is stopping.
  bool wait(int fd) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    while (::poll(p, 2, -1) < 0) {
    }
    return !(p[1].revents & POLLIN);
  }

  void send_all(int fd, const std::string& s) {
    const size_t step = chunk_ == 0 ? s.size() : chunk_;
    for (size_t off = 0; off < s.size(); off += step) {
      if (::send(fd, s.data() + off, std::min(step, s.size() - off), MSG_NOSIGNAL) < 0) return;
      if (chunk_ != 0) std::this_thread::sleep_for(100us);
    }
  }

  // One connection; false when the fake is stopping.
  bool converse(int c) {
    send_all(c, greeting_);
    std::string line;
    char ch;
    for (;;) {
      if (!wait(c)) return false;
      if (::recv(c, &ch, 1, 0) != 1) return true;  // the client went without a command
      if (ch == '\n') break;
      line += ch;
    }
    {
      const std::lock_guard lock(mu_);
      commands_.push_back(line);
    }
    const Canned a = answer_(line);
    send_all(c, a.text);
    return !a.hold || wait(c);
  }

  void serve() {
    while (wait(listen_)) {
      const int c = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const bool more = converse(c);
      ::close(c);
      if (!more) return;
    }
  }

  Answer answer_;
  std::string greeting_;
  size_t chunk_;
  int listen_ = -1;
  int stop_[2] = {-1, -1};
  std::mutex mu_;
  std::vector<std::string> commands_;
  std::thread thread_;
};

// The replies of a BIRD that does what it is asked.
Canned canned(const std::string& cmd) {
  if (cmd == "configure") return {kConfigureOk};
  if (cmd == "show protocols") return {kShowProtocols};
  if (cmd == "show route") return {kShowRoute};
  return {kUnknownCommand};
}

std::string error_of(const Result<BirdReply>& r) {
  return r.ok() ? "" : r.error().message;
}
std::string error_of(const Result<void>& r) {
  return r.ok() ? "" : r.error().message;
}

TEST(BirdClient, OneCommandPerConnection) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  FakeBird bird(path, canned);
  const BirdClient client(path, 2s);
  Result<BirdReply> route = client.command("show route");
  ASSERT_TRUE(route.ok()) << route.error().message;
  EXPECT_EQ(route->lines.size(), 4u);
  EXPECT_EQ(route->lines[1].code, 1007);
  // A refused command is a reply, not an Error.
  Result<BirdReply> unknown = client.command("bogus");
  ASSERT_TRUE(unknown.ok()) << unknown.error().message;
  EXPECT_TRUE(unknown->error());
  Result<std::vector<BirdProtocol>> ps = client.protocols();
  ASSERT_TRUE(ps.ok()) << ps.error().message;
  ASSERT_EQ(ps->size(), 3u);
  EXPECT_EQ((*ps)[2].name, "peer1");
  EXPECT_TRUE(client.configure().ok());
  EXPECT_EQ(bird.commands(),
            (std::vector<std::string>{"show route", "bogus", "show protocols", "configure"}));
}

TEST(BirdClient, AReplyArrivingByteByByte) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  FakeBird bird(path, canned, kGreeting, 1);
  Result<std::vector<BirdProtocol>> ps = BirdClient(path, 5s).protocols();
  ASSERT_TRUE(ps.ok()) << ps.error().message;
  EXPECT_EQ(ps->size(), 3u);
}

TEST(BirdClient, ConfigureVerdicts) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  std::string reply;
  FakeBird bird(path, [&](const std::string&) { return Canned{reply}; });
  const BirdClient client(path, 2s);

  reply = kConfigureOk;
  EXPECT_EQ(error_of(client.configure()), "");
  reply = kConfigureInProgress;
  EXPECT_EQ(error_of(client.configure()), "");
  reply =
      "0002-Reading configuration from bird.conf\n"
      "0005 Reconfiguration already in progress, queueing new config\n";
  EXPECT_EQ(error_of(client.configure()), "");

  reply = kConfigureSyntaxError;
  EXPECT_EQ(error_of(client.configure()),
            "BIRD at " + path +
                ": configuration refused: bird.conf:13:36 syntax error, unexpected "
                "CF_SYM_UNDEFINED");
  reply = kConfigureNoFile;
  EXPECT_NE(error_of(client.configure()).find("nonexist.conf: No such file or directory"),
            std::string::npos);
  reply =
      "0002-Reading configuration from bird.conf\n"
      "0006 Reconfiguration ignored, shutting down\n";
  EXPECT_EQ(error_of(client.configure()),
            "BIRD at " + path + ": configure: Reconfiguration ignored, shutting down");

  reply = kUnknownCommand;
  Result<std::vector<BirdProtocol>> ps = client.protocols();
  ASSERT_FALSE(ps.ok());
  EXPECT_EQ(ps.error().message, "BIRD at " + path +
                                    ": show protocols: syntax error, unexpected "
                                    "CF_SYM_UNDEFINED");
}

TEST(BirdClient, NoSocket) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  Result<BirdReply> r = BirdClient(path, 1s).command("show status");
  EXPECT_EQ(error_of(r),
            "BIRD at " + path + ": cannot connect: No such file or directory (is BIRD running?)");
}

TEST(BirdClient, NobodyListening) {
  // The socket file a BIRD that died left behind.
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  ::close(listening_socket(path, /*backlog=*/-1));
  Result<BirdReply> r = BirdClient(path, 1s).command("show status");
  EXPECT_EQ(error_of(r),
            "BIRD at " + path + ": cannot connect: Connection refused (is BIRD running?)");
}

TEST(BirdClient, AnInvalidPathOrCommand) {
  EXPECT_NE(error_of(BirdClient("", 1s).command("show status")).find("invalid socket path"),
            std::string::npos);
  EXPECT_NE(error_of(BirdClient("/" + std::string(200, 'x'), 1s).command("show status"))
                .find("invalid socket path"),
            std::string::npos);
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  FakeBird bird(path, canned);
  EXPECT_NE(
      error_of(BirdClient(path, 1s).command("show route\nconfigure")).find("a command is one line"),
      std::string::npos);
  EXPECT_TRUE(bird.commands().empty());
}

// The whole exchange within the timeout: an Error soon after it, whichever step BIRD stalls in.
void expect_timeout(const std::string& path, const std::string& step) {
  constexpr auto kTimeout = 200ms;
  const auto start = Clock::now();
  Result<BirdReply> r = BirdClient(path, kTimeout).command("show protocols");
  const auto took = Clock::now() - start;
  EXPECT_EQ(error_of(r), "BIRD at " + path + ": " + step + ": no answer within 200 ms");
  EXPECT_GE(took, kTimeout);
  EXPECT_LT(took, kTimeout + 300ms);
}

TEST(BirdClient, TimeoutWithoutAGreeting) {
  // Listening, never accepting: the kernel completes the connection, nobody speaks.
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  const int fd = listening_socket(path);
  expect_timeout(path, "greeting");
  ::close(fd);
}

TEST(BirdClient, TimeoutWithTheBacklogFull) {
  // A BIRD that accepts no connection, and one connection already waiting for it: a unix
  // socket refuses the next at once (EAGAIN), and the client retries until the timeout.
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  const int fd = listening_socket(path, /*backlog=*/0);
  const int waiting = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_un sa = address(path);
  ASSERT_EQ(::connect(waiting, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
  expect_timeout(path, "connecting (the socket's backlog is full)");
  ::close(waiting);
  ::close(fd);
}

TEST(BirdClient, TimeoutWithoutAReply) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  FakeBird bird(path, [](const std::string&) { return Canned{"", true}; });
  expect_timeout(path, "reply to 'show protocols'");
  EXPECT_EQ(bird.commands(), std::vector<std::string>{"show protocols"});
}

TEST(BirdClient, TimeoutInTheMiddleOfAReply) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  FakeBird bird(path, [](const std::string&) { return Canned{"2002-Name       Proto\n", true}; });
  expect_timeout(path, "reply to 'show protocols'");
}

TEST(BirdClient, ConnectionClosedBeforeTheEnd) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  FakeBird bird(path, [](const std::string&) {
    return Canned{"2002-Name       Proto\n1002-device1    Device\n"};
  });
  EXPECT_EQ(error_of(BirdClient(path, 1s).command("show protocols")),
            "BIRD at " + path +
                ": reply to 'show protocols': connection closed before its end, after "
                "\"2002-Name       Proto\\x0a1002-device1    Device\\x0a\"");
}

TEST(BirdClient, NotBird) {
  TempDir dir;
  const std::string path = dir.path() + "/bird.ctl";
  {
    FakeBird other(path, canned, "0000 \n");
    EXPECT_EQ(error_of(BirdClient(path, 1s).command("show status")),
              "BIRD at " + path + ": not BIRD's greeting (\"0001 BIRD ... ready.\"): \"\"");
  }
  ::unlink(path.c_str());
  FakeBird http(path, canned, "HTTP/1.1 400 Bad Request\r\n\r\n");
  EXPECT_NE(
      error_of(BirdClient(path, 1s).command("show status")).find(": greeting: not a reply line"),
      std::string::npos);
}

}  // namespace
}  // namespace magline::control

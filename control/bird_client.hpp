// A client of BIRD's control socket: the unix stream socket birdc speaks to (bird -s PATH,
// /run/bird/bird.ctl by default). Magline writes BIRD's configuration file, asks BIRD to re-read
// it (configure) and reports what BIRD says of its protocols (show protocols).
//
// The protocol, as BIRD 2.0.12 speaks it: on connecting, a greeting "0001 BIRD 2.0.12 ready.";
// then, for each command line sent ("show protocols\n"), a reply of lines "CCCC-text" (more
// follow) ending with one "CCCC text" (the last), where CCCC is a 4-digit code: 0xxx done, 1xxx
// a table entry, 2xxx a table heading, 8xxx a run-time error, 9xxx a parse error (an unknown
// command). A line " text" continues the previous code. A line "+text" is a spontaneous printout
// (log lines, after the `echo` command only), not part of any reply.
//
// One command per connection: connect, greeting, command, reply, close. BIRD serves each
// connection on its own, so nothing is shared between commands, and a BIRD restarted between
// two commands is simply reconnected to. Blocking I/O bounded by poll(): for a thread of its
// own, never a packet path. No state: the functions are const and thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/result.hpp"

namespace magline::control {

struct BirdReply {
  struct Line {
    int code = 0;      // a continuation line has the code of the line it continues
    std::string text;  // after "CCCC-", "CCCC " or " ", as BIRD wrote it
  };
  std::vector<Line> lines;  // at least one: the last is the one that ended the reply

  int code() const noexcept { return lines.empty() ? 0 : lines.back().code; }
  bool error() const noexcept;     // any line with a code >= 8000
  std::string error_text() const;  // the error lines' text, joined with "; "
  std::string text() const;        // every line's text, one per line (for messages, tests)
};

// A whole reply (what follows the command, up to and including its last line's '\n') as lines;
// "+" lines dropped. The greeting is a reply of its own ("0001 ..."). Errors: a line that is
// neither "CCCC-", "CCCC " nor " " + text, a continuation with nothing to continue, text after
// the last line, and no last line (an incomplete reply).
Result<BirdReply> parse_bird_reply(std::string_view text);

// One line of "show protocols" (or of "show protocols all": its details are skipped).
struct BirdProtocol {
  std::string name;   // "peer1"
  std::string proto;  // "BGP", "Static", "Device"
  std::string table;  // "master4", or "---" (a BGP protocol: its tables are its channels')
  std::string state;  // "up", "start", "down", "stop"
  std::string since;  // "01:42:10.741" in the last 20 hours, "2026-12-04" before (default)
  // The protocol's own words, "" for most: for BGP its session state ("Idle", "Connect",
  // "Active", "OpenSent", "OpenConfirm", "Established", "Passive") then the last error
  // ("Active        Socket: Connection refused"), or the error alone while down.
  std::string info;
};

// The protocols of a "show protocols" reply (lines of code 1002); lines with fewer than five
// fields are not protocols and are skipped. A "since" of two fields (timeformat "iso long":
// "2026-12-05 01:47:00") is kept whole.
std::vector<BirdProtocol> parse_bird_protocols(const BirdReply& reply);

class BirdClient {
 public:
  // `timeout`: for each call as a whole, connecting included.
  BirdClient(std::string socket_path, std::chrono::milliseconds timeout);

  // Sends `cmd` (one line, no '\n': "show route") on a fresh connection and returns BIRD's
  // reply to it, error codes included: a refused command is a reply for the caller to judge
  // (error(), error_text()). Errors: no BIRD on the socket (the path and the cause: "No such
  // file or directory" when BIRD is not running, or stopped and removed its socket; "Connection
  // refused" when it died and left it), the timeout, a greeting or reply that is not BIRD's
  // protocol, the connection closed before the reply's end, a reply over 16 MiB.
  Result<BirdReply> command(std::string_view cmd) const;

  // "configure": BIRD re-reads its configuration file (the one given to `bird -c`). Ok when it
  // took it ("0003 Reconfigured", also when nothing changed; "0004 Reconfiguration in progress"
  // while protocols it changed restart; "0005 ...queueing" behind another reconfiguration).
  // Errors: BIRD's message when it refused the file ("8002 bird.conf:13:36 syntax error, ...":
  // it keeps running its previous configuration), any other outcome (e.g. "0006
  // Reconfiguration ignored, shutting down"), and command()'s.
  Result<void> configure() const;

  // "show protocols", parsed. Errors: command()'s, and a reply with error codes.
  Result<std::vector<BirdProtocol>> protocols() const;

  const std::string& socket_path() const noexcept { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace magline::control

// `magline run`'s log: every line written to a LogStream (ended by "\n" or std::endl) is one
// record, written whole to the sink's stream under its lock, so that lines from different
// threads never mix, in one of three formats:
//
//   text    the line as written (what `magline run` always printed; for people and journald)
//   logfmt  time=2026-12-03T09:00:00.123Z level=info msg="forwarding 3 services on 1 port(s)"
//   json    {"time":"2026-12-03T09:00:00.123Z","level":"info","msg":"forwarding 3 ..."}
//
// In logfmt and json the leading "magline: " of a line is left out of msg (it names the
// program, which a log pipeline knows). A line's level is info unless a manipulator says
// otherwise (`log << log_error << "..." << std::endl`); lines below the sink's level are
// dropped. The manipulators do nothing on other streams, so code that logs can be handed a
// std::ostringstream in tests.
//
// One LogStream per thread that writes (std::ostream's own state is not for sharing); any
// number of them share a LogSink.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>

namespace magline::control {

enum class LogLevel : uint8_t { debug, info, warning, error };
enum class LogFormat : uint8_t { text, logfmt, json };

std::string_view to_string(LogLevel level);
std::string_view to_string(LogFormat format);
std::optional<LogLevel> parse_log_level(std::string_view text);
std::optional<LogFormat> parse_log_format(std::string_view text);

class LogSink {
 public:
  LogSink(std::ostream& out, LogFormat format = LogFormat::text, LogLevel min = LogLevel::info)
      : out_(out), format_(format), min_(min) {}

  // One record; `line` without its newline. `now_ms`: milliseconds since the epoch (0: now).
  void write(LogLevel level, std::string_view line, uint64_t now_ms = 0);
  bool enabled(LogLevel level) const noexcept { return level >= min_; }
  LogFormat format() const noexcept { return format_; }

 private:
  std::mutex mu_;
  std::ostream& out_;
  const LogFormat format_;
  const LogLevel min_;
};

// The record `line` becomes in `format` (without the newline): the pure part of LogSink::write.
std::string format_record(LogFormat format, LogLevel level, std::string_view line,
                          uint64_t now_ms);

class LogBuf : public std::streambuf {
 public:
  explicit LogBuf(LogSink& sink) : sink_(sink) {}
  void set_level(LogLevel level) noexcept { level_ = level; }
  // Writes a line left without its newline.
  void finish() {
    if (!line_.empty()) end_line();
  }

 protected:
  int_type overflow(int_type c) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;  // std::flush: nothing until the line ends

 private:
  void end_line();

  LogSink& sink_;
  std::string line_;
  LogLevel level_ = LogLevel::info;  // of the line being written
};

class LogStream : public std::ostream {
 public:
  explicit LogStream(LogSink& sink) : std::ostream(nullptr), buf_(sink) { rdbuf(&buf_); }
  ~LogStream() override;  // a last line without its newline is written too

 private:
  LogBuf buf_;
};

// The level of the line being written, on a LogStream; nothing on any other stream.
std::ostream& log_error(std::ostream& os);
std::ostream& log_warning(std::ostream& os);
std::ostream& log_debug(std::ostream& os);

}  // namespace magline::control

#include "control/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace magline::control {

namespace {

constexpr std::string_view kProgram = "magline: ";

uint64_t wall_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

// RFC 3339 in UTC with milliseconds: 2026-12-03T09:00:00.123Z.
std::string timestamp(uint64_t ms) {
  const std::time_t s = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[96];  // what the compiler counts for any int; 24 used
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unsigned(ms % 1000));
  return buf;
}

// `s` inside double quotes, escaped for JSON (logfmt's quoted values take the same escapes).
void quoted(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", c);
          out += esc;
        } else {
          out += ch;  // UTF-8 passes as it is
        }
    }
  }
  out += '"';
}

LogBuf* log_buf(std::ostream& os) { return dynamic_cast<LogBuf*>(os.rdbuf()); }

}  // namespace

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::string_view to_string(LogFormat format) {
  switch (format) {
    case LogFormat::text:
      return "text";
    case LogFormat::logfmt:
      return "logfmt";
    case LogFormat::json:
      return "json";
  }
  return "text";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  for (const LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error}) {
    if (text == to_string(l)) return l;
  }
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view text) {
  for (const LogFormat f : {LogFormat::text, LogFormat::logfmt, LogFormat::json}) {
    if (text == to_string(f)) return f;
  }
  return std::nullopt;
}

std::string format_record(LogFormat format, LogLevel level, std::string_view line,
                          uint64_t now_ms) {
  if (format == LogFormat::text) return std::string(line);
  std::string_view msg = line;
  if (msg.substr(0, kProgram.size()) == kProgram) msg.remove_prefix(kProgram.size());
  std::string out;
  out.reserve(line.size() + 64);
  if (format == LogFormat::logfmt) {
    out += "time=" + timestamp(now_ms) + " level=" + std::string(to_string(level)) + " msg=";
    quoted(out, msg);
  } else {
    out += "{\"time\":\"" + timestamp(now_ms) + "\",\"level\":\"" +
           std::string(to_string(level)) + "\",\"msg\":";
    quoted(out, msg);
    out += '}';
  }
  return out;
}

void LogSink::write(LogLevel level, std::string_view line, uint64_t now_ms) {
  if (!enabled(level)) return;
  const std::string record = format_record(format_, level, line, now_ms ? now_ms : wall_ms());
  std::lock_guard lock(mu_);
  out_ << record << '\n';
  out_.flush();
}

LogBuf::int_type LogBuf::overflow(int_type c) {
  if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
  const char ch = traits_type::to_char_type(c);
  if (ch == '\n') {
    end_line();
  } else {
    line_ += ch;
  }
  return c;
}

std::streamsize LogBuf::xsputn(const char* s, std::streamsize n) {
  for (std::streamsize i = 0; i < n; ++i) {
    if (s[i] == '\n') {
      end_line();
    } else {
      line_ += s[i];
    }
  }
  return n;
}

int LogBuf::sync() { return 0; }

void LogBuf::end_line() {
  sink_.write(level_, line_);
  line_.clear();
  level_ = LogLevel::info;
}

LogStream::~LogStream() { buf_.finish(); }

std::ostream& log_error(std::ostream& os) {
  if (LogBuf* b = log_buf(os)) b->set_level(LogLevel::error);
  return os;
}

std::ostream& log_warning(std::ostream& os) {
  if (LogBuf* b = log_buf(os)) b->set_level(LogLevel::warning);
  return os;
}

std::ostream& log_debug(std::ostream& os) {
  if (LogBuf* b = log_buf(os)) b->set_level(LogLevel::debug);
  return os;
}

}  // namespace magline::control

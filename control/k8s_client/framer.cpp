#include "control/k8s_client/framer.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace magline::k8s {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

std::string describe(char c) {
  char buf[16];
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", u);
  }
  return buf;
}

}  // namespace

bool JsonFramer::fail(std::string message) {
  error_ = std::move(message);
  return false;
}

void JsonFramer::reset() {
  current_.clear();
  stack_.clear();
  in_string_ = false;
  escape_ = false;
  error_.clear();
  offset_ = 0;
}

bool JsonFramer::feed(std::string_view bytes, std::vector<std::string>& out) {
  if (failed()) return false;
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    if (stack_.empty()) {
      // Between values: whitespace, then the opening bracket of the next one.
      const char c = bytes[i];
      if (is_space(c)) {
        ++i;
        ++offset_;
        continue;
      }
      if (c != '{' && c != '[') {
        return fail("watch stream: unexpected " + describe(c) + " at byte " +
                    std::to_string(offset_) + " (expected a JSON object)");
      }
      stack_.push_back(c == '{' ? '}' : ']');
      current_.push_back(c);
      ++i;
      ++offset_;
      continue;
    }
    // Inside a value: scan a run of bytes up to its end, the end of the input or the value's
    // size limit, then copy the run at once. The limit bounds the scan (not the copy) so that a
    // stream fails at the same byte, for the same reason, however it is chunked.
    const size_t start = i;
    const size_t end = std::min(n, start + (max_value_bytes_ - current_.size()));
    bool complete = false;
    for (; i < end && !complete; ++i) {
      const char c = bytes[i];
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
        continue;
      }
      switch (c) {
        case '"':
          in_string_ = true;
          break;
        case '{':
        case '[':
          if (stack_.size() >= kMaxDepth) {
            return fail("watch stream: nesting deeper than " + std::to_string(kMaxDepth) +
                        " at byte " + std::to_string(offset_ + (i - start)));
          }
          stack_.push_back(c == '{' ? '}' : ']');
          break;
        case '}':
        case ']':
          if (stack_.back() != c) {
            return fail("watch stream: " + describe(c) + " closes " +
                        describe(stack_.back() == '}' ? '{' : '[') + " at byte " +
                        std::to_string(offset_ + (i - start)));
          }
          stack_.pop_back();
          complete = stack_.empty();
          break;
        default:
          break;
      }
    }
    const size_t run = i - start;
    if (!complete && i < n) {  // stopped by the limit, with more of the value to come
      return fail("watch stream: a value exceeds " + std::to_string(max_value_bytes_) +
                  " bytes at byte " + std::to_string(offset_ + run));
    }
    current_.append(bytes.data() + start, run);
    offset_ += run;
    if (complete) {
      out.push_back(std::move(current_));
      current_ = std::string();
      ++values_;
    }
  }
  return true;
}

}  // namespace magline::k8s

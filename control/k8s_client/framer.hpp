// An incremental framer for a stream of concatenated JSON values: the body of a Kubernetes watch
// (docs/k8s-client.md). Chunk boundaries are not event boundaries (k8s-api.md §3.2), so bytes
// are fed in whatever pieces the transport hands over and whole top-level values come out, as
// client-go's JSON framer does ("JSON objects are self-framing",
// apimachinery/pkg/runtime/serializer/json/json.go). Newlines are not relied on.
//
// The framer only finds where each value ends: it tracks brackets, strings and escapes, and
// rejects what cannot start or continue a value. Whether a framed value is valid JSON is for the
// parser to say. Pure: no I/O, no allocation beyond the value being assembled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace magline::k8s {

class JsonFramer {
 public:
  static constexpr size_t kDefaultMaxValueBytes = size_t{64} << 20;
  static constexpr size_t kMaxDepth = 512;

  // A value longer than max_value_bytes is an error (the stream is broken or hostile), not a
  // reason to grow without bound.
  explicit JsonFramer(size_t max_value_bytes = kDefaultMaxValueBytes)
      : max_value_bytes_(max_value_bytes) {}

  // Consumes `bytes` (any split of the stream) and appends every value completed by them to
  // `out`, in stream order; a partial value is kept for the next call. Top-level values must be
  // objects or arrays, separated by optional whitespace. Returns false once the stream is
  // malformed or a value is too long; the framer then stays failed (error() says why) until
  // reset(). Values completed before the fault are still appended.
  bool feed(std::string_view bytes, std::vector<std::string>& out);

  bool failed() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  // Bytes of a value started but not finished: non-zero at the end of a stream means it was cut.
  size_t pending_bytes() const noexcept { return current_.size(); }
  uint64_t values() const noexcept { return values_; }

  // Forgets the partial value and any error: for a new stream.
  void reset();

 private:
  bool fail(std::string message);

  size_t max_value_bytes_;
  std::string current_;      // the value being assembled
  std::vector<char> stack_;  // the closing bracket each open one expects
  bool in_string_ = false;
  bool escape_ = false;
  uint64_t values_ = 0;
  uint64_t offset_ = 0;  // stream offset, for error messages
  std::string error_;
};

}  // namespace magline::k8s

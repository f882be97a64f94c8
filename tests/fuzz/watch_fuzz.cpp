// Fuzz target for what the API server sends: a watch stream's bytes through the framer
// (control/k8s_client/framer.hpp), each framed value parsed as JSON, decoded as a Service, an
// EndpointSlice and a Node (control/k8s/objects.hpp), and whatever decodes translated into
// services (control/k8s/translate.hpp), with pod targets and with node targets. Beyond "no crash,
// no sanitizer report":
//   - the framer frames the same values, and fails alike (same message, same byte), whatever
//     the chunking of the stream (the first byte of the input chooses the chunk size);
//   - every framed value starts with '{' or '[' and ends with its closing bracket;
//   - a translation's services are sorted by name, one origin each, with a Maglev table.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/k8s/objects.hpp"
#include "control/k8s/translate.hpp"
#include "control/k8s_client/framer.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace magline;

constexpr size_t kMaxValue = 1 << 16;  // framer bound: long values are refused, not grown
constexpr size_t kMaxDecoded = 64;     // values decoded per input, to keep executions fast

void check_value(const std::string& v) {
  CHECK_INVARIANT(v.size() >= 2, "a framed value has two brackets at least");
  const char open = v.front(), close = v.back();
  CHECK_INVARIANT((open == '{' && close == '}') || (open == '[' && close == ']'),
                  "a framed value is one bracketed value");
}

void check_translation(const k8s::Translation& t) {
  CHECK_INVARIANT(t.origins.size() == t.services.size(), "one origin per service");
  for (size_t i = 0; i + 1 < t.services.size(); ++i) {
    CHECK_INVARIANT(t.services[i].name < t.services[i + 1].name, "services sorted, names unique");
  }
  if (t.skipped) CHECK_INVARIANT(t.services.empty(), "a skipped Service has no services");
}

void decode_all(const std::vector<std::string>& values) {
  std::vector<k8s::K8sService> services;
  std::vector<k8s::K8sEndpointSlice> slices;
  std::vector<k8s::K8sNode> nodes;
  for (size_t i = 0; i < values.size() && i < kMaxDecoded; ++i) {
    const nlohmann::json j = nlohmann::json::parse(values[i], nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;
    // A watch event wraps its object; a LIST holds items; a bare object is tried as it is.
    std::vector<const nlohmann::json*> objects{&j};
    if (j.is_object()) {
      if (auto it = j.find("object"); it != j.end()) objects.push_back(&*it);
      if (auto it = j.find("items"); it != j.end() && it->is_array()) {
        for (const nlohmann::json& item : *it) objects.push_back(&item);
      }
    }
    for (const nlohmann::json* o : objects) {
      if (auto svc = k8s::decode_service(*o)) services.push_back(std::move(svc).value());
      if (auto slice = k8s::decode_endpoint_slice(*o)) slices.push_back(std::move(slice).value());
      if (auto node = k8s::decode_node(*o)) nodes.push_back(std::move(node).value());
    }
  }
  std::vector<const k8s::K8sEndpointSlice*> slice_ptrs;
  for (const k8s::K8sEndpointSlice& s : slices) slice_ptrs.push_back(&s);
  std::vector<const k8s::K8sNode*> node_ptrs;
  for (const k8s::K8sNode& n : nodes)
    node_ptrs.push_back(&n);
  k8s::TranslateOptions opts;
  for (const k8s::K8sService& svc : services) {
    check_translation(k8s::translate(svc, slice_ptrs, node_ptrs, opts));
  }
  opts.targets = k8s::Targets::nodes;
  for (const k8s::K8sService& svc : services) {
    check_translation(k8s::translate(svc, slice_ptrs, node_ptrs, opts));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = size_t(data[0] % 17) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  k8s::JsonFramer whole(kMaxValue);
  std::vector<std::string> values;
  whole.feed(stream, values);

  k8s::JsonFramer pieces(kMaxValue);
  std::vector<std::string> piecewise;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    pieces.feed(stream.substr(at, chunk), piecewise);
  }
  CHECK_INVARIANT(piecewise == values, "the same values whatever the chunking");
  CHECK_INVARIANT(pieces.failed() == whole.failed(), "the same failure whatever the chunking");
  CHECK_INVARIANT(pieces.error() == whole.error(), "the same error, at the same byte");
  if (!whole.failed()) {
    CHECK_INVARIANT(pieces.pending_bytes() == whole.pending_bytes(), "the same partial value");
  }
  CHECK_INVARIANT(whole.values() == values.size(), "values() counts what was framed");
  for (const std::string& v : values) check_value(v);
  decode_all(values);
  return 0;
}

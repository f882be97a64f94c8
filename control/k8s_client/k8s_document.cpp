#include "control/k8s_client/k8s_document.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

namespace magline::control {

namespace {

using Json = nlohmann::json;

// Fields whose Kubernetes type is a string, a []string or a map[string]string (of the objects
// control/k8s/objects.cpp decodes, and their metadata): below them a plain `80` is "80".
bool string_typed(const std::string& key) {
  static const std::set<std::string> kKeys = {"apiVersion",
                                              "kind",
                                              "name",
                                              "namespace",
                                              "uid",
                                              "resourceVersion",
                                              "generateName",
                                              "creationTimestamp",
                                              "deletionTimestamp",
                                              "labels",
                                              "annotations",
                                              "finalizers",
                                              "type",
                                              "clusterIP",
                                              "clusterIPs",
                                              "externalIPs",
                                              "externalName",
                                              "loadBalancerIP",
                                              "loadBalancerClass",
                                              "loadBalancerSourceRanges",
                                              "externalTrafficPolicy",
                                              "internalTrafficPolicy",
                                              "sessionAffinity",
                                              "ipFamilies",
                                              "ipFamilyPolicy",
                                              "selector",
                                              "protocol",
                                              "appProtocol",
                                              "trafficDistribution",
                                              "addressType",
                                              "addresses",
                                              "nodeName",
                                              "hostname",
                                              "zone",
                                              "ip",
                                              "ipMode"};
  return kKeys.count(key) > 0;
}

Error at(const YAML::Mark& mark, const std::string& what) {
  if (mark.is_null()) return Error{what};
  return Error{std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": " + what};
}

// The core schema's number forms, matched by hand (std::regex is slow, and GCC 12 warns inside
// it under the sanitizers).
bool digits(std::string_view s, int base) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = base == 8    ? (c >= '0' && c <= '7')
                    : base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                                 : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string_view unsigned_part(std::string_view s) {
  return !s.empty() && (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
}

bool is_int(std::string_view s) {  // [-+]?[0-9]+
  return digits(unsigned_part(s), 10);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float(std::string_view s) {
  std::string_view m = unsigned_part(s);
  const size_t e = m.find_first_of("eE");
  const std::string_view mantissa = m.substr(0, e);
  if (e != std::string_view::npos && !is_int(m.substr(e + 1))) return false;
  const size_t dot = mantissa.find('.');
  if (dot == std::string_view::npos) return digits(mantissa, 10);
  const std::string_view whole = mantissa.substr(0, dot), frac = mantissa.substr(dot + 1);
  if (whole.empty()) return digits(frac, 10);
  return digits(whole, 10) && (frac.empty() || digits(frac, 10));
}

bool is_special(std::string_view s) {  // [-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)
  const std::string_view m = unsigned_part(s);
  if (m == ".inf" || m == ".Inf" || m == ".INF") return true;
  return s == ".nan" || s == ".NaN" || s == ".NAN";
}

// A plain scalar as YAML 1.2's core schema resolves it.
Result<Json> resolve(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Json(nullptr);
  if (s == "true" || s == "True" || s == "TRUE") return Json(true);
  if (s == "false" || s == "False" || s == "FALSE") return Json(false);
  const std::string_view sv = s;
  if ((sv.substr(0, 2) == "0o" && digits(sv.substr(2), 8)) ||
      (sv.substr(0, 2) == "0x" && digits(sv.substr(2), 16))) {
    uint64_t v = 0;
    const auto r = std::from_chars(s.data() + 2, s.data() + s.size(), v, s[1] == 'o' ? 8 : 16);
    if (r.ec == std::errc()) return Json(v);
    return at(node.Mark(), "number overflow parsing '" + s + "'");
  }
  if (is_int(s)) {
    const char* first = s.data() + (s[0] == '+' ? 1 : 0);
    int64_t v = 0;
    if (std::from_chars(first, s.data() + s.size(), v).ec == std::errc()) return Json(v);
    uint64_t u = 0;
    if (std::from_chars(first, s.data() + s.size(), u).ec == std::errc()) return Json(u);
  }
  if (is_int(s) || is_float(s)) {
    const double d = std::strtod(s.c_str(), nullptr);
    if (!std::isfinite(d)) return at(node.Mark(), "number overflow parsing '" + s + "'");
    return Json(d);
  }
  if (is_special(s)) {
    return at(node.Mark(), "'" + s + "' is not a number JSON can hold");
  }
  return Json(s);
}

// `strings`: below a string-typed field, where scalars are strings whatever they look like.
Result<Json> convert(const YAML::Node& node, bool strings) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      // "!" is what yaml-cpp tags a quoted or block scalar with: a string as written.
      const std::string& tag = node.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return Json(node.Scalar());
      if (strings) {
        auto v = resolve(node);
        if (v && v->is_null()) return v;  // null is null everywhere, as in JSON
        return Json(node.Scalar());
      }
      return resolve(node);
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const YAML::Node& item : node) {
        auto v = convert(item, strings);
        if (!v) return v;
        out.push_back(std::move(v).value());
      }
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return at(kv.first.Mark(), "a key must be a plain value");
        const std::string key = kv.first.Scalar();
        auto v = convert(kv.second, strings || string_typed(key));
        if (!v) return v;
        out[key] = std::move(v).value();
      }
      return out;
    }
  }
  return Json(nullptr);
}

std::string implied_kind(const Json& list) {
  const auto kind = list.find("kind");
  if (kind == list.end() || !kind->is_string()) return {};
  if (*kind == "ServiceList") return "Service";
  if (*kind == "EndpointSliceList") return "EndpointSlice";
  return {};
}

}  // namespace

Result<nlohmann::json> yaml_to_json(std::string_view yaml) {
  try {
    return convert(YAML::Load(std::string(yaml)), false);
  } catch (const YAML::Exception& e) {
    return at(e.mark, "invalid YAML: " + e.msg);
  }
}

Result<nlohmann::json> parse_k8s_document(std::string_view text, const std::string& source) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    try {
      return Json::parse(text);
    } catch (const Json::exception& e) {
      // A number no double holds (1e999) is nlohmann's out_of_range, not parse_error: the
      // same one line.
      return Error{source + ": invalid JSON: " + e.what()};
    }
  }
  std::vector<Json> docs;
  try {
    for (const YAML::Node& node : YAML::LoadAll(std::string(text))) {
      if (node.IsNull()) continue;  // "---" at the end, or a document of comments only
      auto doc = convert(node, false);
      if (!doc) {
        const std::string& m = doc.error().message;
        return Error{source + (!m.empty() && m[0] >= '0' && m[0] <= '9' ? ":" : ": ") + m};
      }
      docs.push_back(std::move(doc).value());
    }
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return Error{source + ": invalid YAML: " + e.msg};
    return Error{source + ":" + std::to_string(e.mark.line + 1) + ":" +
                 std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg};
  }
  if (docs.size() == 1) return std::move(docs[0]);
  // Several documents: one List, as kubectl would print them together.
  Json items = Json::array();
  for (Json& doc : docs) {
    const auto list = doc.is_object() ? doc.find("items") : doc.end();
    if (list == doc.end() || !list->is_array()) {
      items.push_back(std::move(doc));
      continue;
    }
    const std::string kind = implied_kind(doc);
    for (Json& item : *list) {
      if (!kind.empty() && item.is_object() && !item.contains("kind")) item["kind"] = kind;
      items.push_back(std::move(item));
    }
  }
  return Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", std::move(items)}};
}

}  // namespace magline::control

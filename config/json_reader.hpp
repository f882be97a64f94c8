// A small reader over nlohmann::json whose typed reads know the path of every value, so that an
// error can say `services[0].backends[2].port: expected an integer in 1..65535, got "80a"`.
// Reading goes on after an error (the first one counts), so decoders need no exceptions.
//
// Two kinds of document go through it, which differ on a few points (Dialect): the
// configuration file (config.cpp; strict parsing with parse_json(), unknown keys refused) and
// Kubernetes objects (control/k8s/objects.cpp; null is absent, unknown keys are normal).
//
// Its own library (magline_json): nlohmann::json and the header-only Result, nothing else of the
// data plane. Reads of addresses and other domain values are the callers', on top of
// string_silently().
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/result.hpp"

namespace magline::cfg {

using Json = nlohmann::json;

// What the path of the top-level value prints as.
inline constexpr std::string_view kTopLevel = "(top level)";

std::string child_path(std::string_view parent, std::string_view key);
std::string index_path(std::string_view parent, size_t index);

// Parses strict JSON (RFC 8259: no comments, no trailing commas) nested at most 32 deep. Errors
// are `SOURCE:LINE:COL: invalid JSON: REASON`, `SOURCE: PATH: duplicate key "K"` (PATH is the
// object's) and `SOURCE: PATH: nested deeper than 32 levels`.
Result<Json> parse_json(std::string_view text, std::string_view source);

// Collects the first error of a load. Reading goes on after it, but later errors are dropped:
// a read that fails returns a default, and whatever follows from that default (a second
// "missing" or "wrong family" complaint) is noise the user should not see. The loader can so
// read straight through, checking once at the end, and the message names the first bad field.
class Errors {
 public:
  // Messages are `PATH: message`.
  Errors() = default;
  // Messages are `SOURCE: PATH: message`.
  explicit Errors(std::string_view source) : prefix_(std::string(source) + ": ") {}

  void fail(std::string_view path, std::string_view message);
  bool failed() const noexcept { return failed_; }
  // Precondition: failed().
  Error error() const { return Error{message_}; }

 private:
  std::string prefix_;
  std::string message_;
  bool failed_ = false;
};

// Where the two kinds of document differ. A configuration file is written by hand: a mistake is
// shown as it was typed, and null is a value like any other (so, where something else is
// expected, an error). A Kubernetes object comes from the API server or a tool written in Go,
// which writes nil as null or leaves it out; its messages name the JSON type that is wrong.
struct Dialect {
  bool null_is_absent = false;  // Object::find() passes over a null member
  bool show_type = false;       // a value of the wrong type shows as its type ("got number")
  size_t max_shown = 60;        // a value shown longer than this is cut, with "..."
  std::string_view boolean = "true or false";  // what "expected ..." names for a boolean
};
inline constexpr Dialect kConfigDialect{};
inline constexpr Dialect kKubernetesDialect{.null_is_absent = true,
                                            .show_type = true,
                                            .max_shown = std::numeric_limits<size_t>::max(),
                                            .boolean = "a boolean"};

template <typename E>
struct Choice {
  std::string_view name;
  E value;
};

class Object;

// A JSON value with the path that leads to it. Typed reads check the type and range, record an
// error at this path on a mismatch and return std::nullopt. Refers to the Json, the Errors and
// the Dialect it was made from, which must outlive it.
class Node {
 public:
  Node(const Json& value, std::string path, Errors& errors, const Dialect& dialect = kConfigDialect)
      : value_(&value), path_(std::move(path)), errors_(&errors), dialect_(&dialect) {}

  const std::string& path() const noexcept { return path_; }
  const Json& json() const noexcept { return *value_; }
  Errors& errors() const noexcept { return *errors_; }
  const Dialect& dialect() const noexcept { return *dialect_; }
  void fail(std::string_view message) const { errors_->fail(path_, message); }

  // An integer in [lo, hi]; floats (even 80.0), booleans and strings are refused.
  std::optional<uint64_t> integer(uint64_t lo, uint64_t hi) const;
  std::optional<int64_t> signed_integer(int64_t lo, int64_t hi) const;
  std::optional<std::string> string() const;
  // The string, or std::nullopt without an error: for reads that parse a string further and
  // say themselves what they expected.
  std::optional<std::string> string_silently() const;
  std::optional<bool> boolean() const;
  // The elements of an array (none after an error).
  std::vector<Node> array() const;
  // An object whose keys must all be in `known` (listed in schema order: the error shows them).
  Object object(std::initializer_list<std::string_view> known) const;
  // An object with any keys.
  Object object() const;

  template <typename E>
  std::optional<E> choice(std::span<const Choice<E>> choices) const {
    if (auto s = string_silently()) {
      for (const Choice<E>& c : choices) {
        if (c.name == *s) return c.value;
      }
    }
    std::vector<std::string_view> names;
    for (const Choice<E>& c : choices)
      names.push_back(c.name);
    fail_choice(names);
    return std::nullopt;
  }

  // "got X" for messages: the value as JSON text, cut short past Dialect::max_shown.
  std::string shown() const;

 private:
  // "got X" for a value of the wrong type: its type or its text, as the dialect says.
  std::string shown_for_type() const;
  template <typename T>
  std::optional<T> integer_in(T lo, T hi) const;
  void fail_choice(std::span<const std::string_view> names) const;

  const Json* value_;
  std::string path_;
  Errors* errors_;
  const Dialect* dialect_;
};

// An object opened by Node::object(). Not an object (after an error): every key is absent.
class Object {
 public:
  Object(const Node& node, bool valid) : node_(node), valid_(valid) {}

  const std::string& path() const noexcept { return node_.path(); }
  void fail(std::string_view message) const { node_.fail(message); }
  // Records an error at the path of `key`, present or not.
  void fail_key(std::string_view key, std::string_view message) const;

  // The value of an optional key (absent too when null, if the dialect says so).
  std::optional<Node> find(std::string_view key) const;
  // The value of a required key; when it is missing, records `missing key "K"` and returns a
  // null Node (whose reads then fail silently, the first error being recorded).
  Node at(std::string_view key) const;
  // Every member, in key order, null or not.
  std::vector<std::pair<std::string, Node>> members() const;
  size_t size() const noexcept { return valid_ ? node_.json().size() : 0; }

  // Optional keys: std::nullopt (or nothing) when absent or after an error.
  std::optional<std::string> string(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<int64_t> signed_integer(std::string_view key, int64_t lo, int64_t hi) const;
  // An array of strings.
  std::vector<std::string> strings(std::string_view key) const;
  // An object whose members are all strings.
  std::map<std::string, std::string> string_map(std::string_view key) const;

  // Optional scalars with their defaults.
  uint64_t integer(std::string_view key, uint64_t lo, uint64_t hi, uint64_t fallback) const;
  template <typename E>
  E choice(std::string_view key, std::span<const Choice<E>> choices, E fallback) const {
    const auto n = find(key);
    return n ? n->choice(choices).value_or(fallback) : fallback;
  }

 private:
  Node node_;
  bool valid_;
};

}  // namespace magline::cfg

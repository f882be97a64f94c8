#include "config/json_reader.hpp"

#include <algorithm>
#include <utility>

namespace magline::cfg {

std::string child_path(std::string_view parent, std::string_view key) {
  std::string p(parent);
  if (!p.empty()) p += '.';
  p += key;
  return p;
}

std::string index_path(std::string_view parent, size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

namespace {

// Builds the DOM through nlohmann's SAX interface rather than json::parse(): the SAX handler sees
// every key (so it can refuse duplicates, which json::parse silently overwrites) and gets the
// byte position of every error, including number overflow, whose exception carries none.
class DomBuilder final : public nlohmann::json_sax<Json> {
 public:
  static constexpr size_t kMaxDepth = 32;

  Json& root() noexcept { return root_; }
  // A well-formed text that is refused: a duplicate key, or nesting too deep.
  bool refused() const noexcept { return refused_; }
  const std::string& refused_path() const noexcept { return refused_path_; }
  const std::string& refused_why() const noexcept { return refused_why_; }
  size_t error_pos() const noexcept { return error_pos_; }
  const std::string& error_what() const noexcept { return error_what_; }

  bool null() override { return place(nullptr); }
  bool boolean(bool v) override { return place(v); }
  bool number_integer(number_integer_t v) override { return place(v); }
  bool number_unsigned(number_unsigned_t v) override { return place(v); }
  bool number_float(number_float_t v, const string_t&) override { return place(v); }
  bool string(string_t& v) override { return place(std::move(v)); }
  bool binary(binary_t& v) override { return place(Json::binary(std::move(v))); }

  bool start_object(std::size_t) override { return open(Json::object()); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    Frame& top = stack_.back();
    // Values are placed as soon as they are complete, so an earlier key is already present.
    if (top.value->contains(k)) return refuse("duplicate key " + Json(k).dump());
    top.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t pos, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error_pos_ = pos;
    error_what_ = ex.what();
    return false;
  }

 private:
  struct Frame {
    Json* value;      // an open object or array
    std::string key;  // an object's key being filled
  };

  // Where the next value goes: the root, the end of the open array, or the open object's key.
  Json* slot() {
    if (stack_.empty()) return &root_;
    Frame& top = stack_.back();
    if (top.value->is_array()) {
      top.value->push_back(nullptr);
      return &top.value->back();
    }
    return &(*top.value)[top.key];
  }

  bool place(Json v) {
    *slot() = std::move(v);
    return true;
  }

  // Pointers into the DOM stay valid: a container grows only while it is the innermost open one.
  bool open(Json v) {
    Json* s = slot();
    *s = std::move(v);
    stack_.push_back({s, {}});
    // The schema is five levels deep. Bounding the depth bounds the recursion of whatever walks
    // the DOM later (dump() for a message, for one).
    if (stack_.size() > kMaxDepth) {
      return refuse("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  // Stops the parse, blaming the innermost open container.
  bool refuse(std::string why) {
    refused_ = true;
    refused_path_ = path_of_innermost();
    refused_why_ = std::move(why);
    return false;
  }

  // The path of the innermost open container: the member of each enclosing one being filled.
  std::string path_of_innermost() const {
    std::string path;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      path = f.value->is_array() ? index_path(path, f.value->size() - 1) : child_path(path, f.key);
    }
    return path;
  }

  Json root_;
  std::vector<Frame> stack_;
  bool refused_ = false;
  std::string refused_path_;
  std::string refused_why_;
  size_t error_pos_ = 0;
  std::string error_what_;
};

// "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while parsing
// object key - unexpected end of input; expected string literal" -> "unexpected end of input;
// expected string literal": the position is printed our way and the rest is noise.
std::string short_reason(std::string_view what) {
  auto drop_through = [&](std::string_view prefix, std::string_view separator) {
    if (what.substr(0, prefix.size()) != prefix) return;
    const auto at = what.find(separator);
    if (at != std::string_view::npos) what.remove_prefix(at + separator.size());
  };
  drop_through("[json.exception.", "] ");
  drop_through("parse error", ": ");
  drop_through("syntax error while parsing ", " - ");
  // The reason quotes the text it choked on, which may be long or not UTF-8 at all: keep the
  // message one short line of ASCII.
  constexpr size_t kMax = 160;
  std::string reason;
  for (const char c : what.substr(0, kMax)) {
    if (uint8_t(c) < 0x80) {
      reason += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      reason += {'\\', 'x', kHex[uint8_t(c) >> 4], kHex[uint8_t(c) & 15]};
    }
  }
  if (what.size() > kMax) reason += "...";
  return reason;
}

// nlohmann reports the count of bytes read, so the offending byte is the last one read (or the
// end of the text).
size_t error_offset(std::string_view text, size_t bytes_read) {
  return std::min(bytes_read == 0 ? 0 : bytes_read - 1, text.size());
}

// nlohmann's own line/column counting says "column 0" after a newline; ours says where an
// editor would put the cursor. Columns count bytes.
std::string line_column(std::string_view text, size_t at) {
  const std::string_view before = text.substr(0, at);
  const size_t line = 1 + size_t(std::count(before.begin(), before.end(), '\n'));
  const size_t line_start =
      before.rfind('\n') == std::string_view::npos ? 0 : before.rfind('\n') + 1;
  return std::to_string(line) + ":" + std::to_string(at - line_start + 1);
}

}  // namespace

Result<Json> parse_json(std::string_view text, std::string_view source) {
  DomBuilder builder;
  // Strict: no comments (the file should read the same in jq or any other tool).
  const bool ok = Json::sax_parse(text, &builder, nlohmann::detail::input_format_t::json,
                                  /*strict=*/true, /*ignore_comments=*/false);
  if (ok) return std::move(builder.root());
  Errors errors(source);
  if (builder.refused()) {
    errors.fail(builder.refused_path(), builder.refused_why());
    return errors.error();
  }
  const size_t at = error_offset(text, builder.error_pos());
  // nlohmann says "invalid literal; last read: '/'", which hides the likely cause.
  const std::string reason =
      text.substr(at, 1) == "/" ? "comments are not allowed" : short_reason(builder.error_what());
  return Error{std::string(source) + ":" + line_column(text, at) + ": invalid JSON: " + reason};
}

void Errors::fail(std::string_view path, std::string_view message) {
  if (failed_) return;
  failed_ = true;
  message_ = prefix_ + std::string(path.empty() ? kTopLevel : path) + ": " + std::string(message);
}

std::string Node::shown() const {
  const size_t max = dialect_->max_shown;
  std::string s = value_->dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() <= max) return s;
  size_t cut = max - 3;
  // Not inside a UTF-8 sequence.
  while (cut > 0 && (uint8_t(s[cut]) & 0xc0) == 0x80)
    --cut;
  return s.substr(0, cut) + "...";
}

std::string Node::shown_for_type() const {
  return dialect_->show_type ? std::string(value_->type_name()) : shown();
}

template <typename T>
std::optional<T> Node::integer_in(T lo, T hi) const {
  // Whichever way nlohmann stores it: "-0" as a signed integer, every other non-negative one as
  // unsigned.
  const auto in_range = [&](auto v) {
    return std::cmp_less_equal(lo, v) && std::cmp_less_equal(v, hi);
  };
  if (value_->is_number_unsigned()) {
    const auto v = value_->get<uint64_t>();
    if (in_range(v)) return T(v);
  } else if (value_->is_number_integer()) {
    const auto v = value_->get<int64_t>();
    if (in_range(v)) return T(v);
  }
  fail("expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
       shown());
  return std::nullopt;
}

std::optional<uint64_t> Node::integer(uint64_t lo, uint64_t hi) const {
  return integer_in(lo, hi);
}

std::optional<int64_t> Node::signed_integer(int64_t lo, int64_t hi) const {
  return integer_in(lo, hi);
}

std::optional<std::string> Node::string_silently() const {
  if (!value_->is_string()) return std::nullopt;
  return value_->get<std::string>();
}

std::optional<std::string> Node::string() const {
  auto s = string_silently();
  if (!s) fail("expected a string, got " + shown_for_type());
  return s;
}

std::optional<bool> Node::boolean() const {
  if (value_->is_boolean()) return value_->get<bool>();
  fail("expected " + std::string(dialect_->boolean) + ", got " + shown_for_type());
  return std::nullopt;
}

std::vector<Node> Node::array() const {
  std::vector<Node> elements;
  if (!value_->is_array()) {
    fail("expected an array, got " + shown_for_type());
    return elements;
  }
  for (size_t i = 0; i < value_->size(); ++i) {
    elements.emplace_back((*value_)[i], index_path(path_, i), *errors_, *dialect_);
  }
  return elements;
}

Object Node::object() const {
  if (!value_->is_object()) {
    fail("expected an object, got " + shown_for_type());
    return Object(*this, false);
  }
  return Object(*this, true);
}

Object Node::object(std::initializer_list<std::string_view> known) const {
  Object o = object();
  if (!value_->is_object()) return o;
  for (const auto& [key, value] : value_->items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (std::string_view k : known)
      list += (list.empty() ? "" : ", ") + std::string(k);
    fail("unknown key " + Json(key).dump() + "; known keys: " + list);
    break;
  }
  return o;
}

void Node::fail_choice(std::span<const std::string_view> names) const {
  std::string list;
  for (std::string_view n : names)
    list += (list.empty() ? "\"" : ", \"") + std::string(n) + "\"";
  fail("expected one of " + list + ", got " + shown());
}

void Object::fail_key(std::string_view key, std::string_view message) const {
  node_.errors().fail(child_path(node_.path(), key), message);
}

std::optional<Node> Object::find(std::string_view key) const {
  if (!valid_) return std::nullopt;
  const Json& object = node_.json();
  const auto it = object.find(key);
  if (it == object.end() || (it->is_null() && node_.dialect().null_is_absent)) {
    return std::nullopt;
  }
  return Node(*it, child_path(node_.path(), key), node_.errors(), node_.dialect());
}

Node Object::at(std::string_view key) const {
  if (auto n = find(key)) return *n;
  static const Json kNull;
  if (valid_) fail("missing key \"" + std::string(key) + "\"");
  return Node(kNull, child_path(node_.path(), key), node_.errors(), node_.dialect());
}

std::vector<std::pair<std::string, Node>> Object::members() const {
  std::vector<std::pair<std::string, Node>> out;
  if (!valid_) return out;
  for (const auto& [key, value] : node_.json().items()) {
    out.emplace_back(key,
                     Node(value, child_path(node_.path(), key), node_.errors(), node_.dialect()));
  }
  return out;
}

std::optional<std::string> Object::string(std::string_view key) const {
  const auto n = find(key);
  return n ? n->string() : std::nullopt;
}

std::optional<bool> Object::boolean(std::string_view key) const {
  const auto n = find(key);
  return n ? n->boolean() : std::nullopt;
}

std::optional<int64_t> Object::signed_integer(std::string_view key, int64_t lo, int64_t hi) const {
  const auto n = find(key);
  return n ? n->signed_integer(lo, hi) : std::nullopt;
}

std::vector<std::string> Object::strings(std::string_view key) const {
  std::vector<std::string> out;
  if (const auto n = find(key)) {
    for (const Node& e : n->array()) {
      if (auto s = e.string()) out.push_back(std::move(*s));
    }
  }
  return out;
}

std::map<std::string, std::string> Object::string_map(std::string_view key) const {
  std::map<std::string, std::string> out;
  if (const auto n = find(key)) {
    for (auto& [k, v] : n->object().members()) {
      if (auto s = v.string()) out.emplace(k, std::move(*s));
    }
  }
  return out;
}

uint64_t Object::integer(std::string_view key, uint64_t lo, uint64_t hi, uint64_t fallback) const {
  const auto n = find(key);
  return n ? n->integer(lo, hi).value_or(fallback) : fallback;
}

}  // namespace magline::cfg

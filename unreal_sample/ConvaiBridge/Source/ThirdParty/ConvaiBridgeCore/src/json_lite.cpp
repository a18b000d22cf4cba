#include "json_lite.h"

#include <cerrno>
#include <cstdlib>

namespace cvb {
namespace detail {
namespace {

constexpr int kMaxJsonDepth = 64;

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  bool Document(Value* out, std::string* error) {
    Skip();
    if (!Parse(out, 0)) {
      if (error) *error = error_ + " at offset " + std::to_string(pos_);
      return false;
    }
    Skip();
    if (pos_ != s_.size()) {
      if (error) *error = "trailing characters at offset " + std::to_string(pos_);
      return false;
    }
    return true;
  }

 private:
  void Skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Err(const char* what) {
    error_ = what;
    return false;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool Parse(Value* out, int depth) {
    if (depth > kMaxJsonDepth) return Err("nesting too deep");
    if (pos_ >= s_.size()) return Err("unexpected end");
    const char c = s_[pos_];
    if (c == '{') return Object(out, depth);
    if (c == '[') return Array(out, depth);
    if (c == '"') {
      std::string str;
      if (!String(&str)) return false;
      *out = Value::Str(std::move(str));
      return true;
    }
    if (Literal("true")) return *out = Value::Bool(true), true;
    if (Literal("false")) return *out = Value::Bool(false), true;
    if (Literal("null")) return *out = Value(), true;
    return Number(out);
  }

  bool Object(Value* out, int depth) {
    ++pos_;
    ValueMap items;
    Skip();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      *out = Value::Map(std::move(items));
      return true;
    }
    while (true) {
      Skip();
      std::string key;
      if (pos_ >= s_.size() || s_[pos_] != '"') return Err("expected a string key");
      if (!String(&key)) return false;
      Skip();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Err("expected ':'");
      ++pos_;
      Skip();
      Value v;
      if (!Parse(&v, depth + 1)) return false;
      items.emplace_back(std::move(key), std::move(v));
      Skip();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        *out = Value::Map(std::move(items));
        return true;
      }
      return Err("expected ',' or '}'");
    }
  }

  bool Array(Value* out, int depth) {
    ++pos_;
    std::vector<Value> items;
    Skip();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      *out = Value::Array(std::move(items));
      return true;
    }
    while (true) {
      Skip();
      Value v;
      if (!Parse(&v, depth + 1)) return false;
      items.push_back(std::move(v));
      Skip();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        *out = Value::Array(std::move(items));
        return true;
      }
      return Err("expected ',' or ']'");
    }
  }

  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  bool Hex4(uint32_t* cp) {
    if (pos_ + 4 > s_.size()) return Err("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else return Err("bad \\u escape");
    }
    *cp = v;
    return true;
  }

  bool String(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return Err("control character in string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xd800 && cp <= 0xdbff && s_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            uint32_t lo = 0;
            if (!Hex4(&lo)) return false;
            if (lo >= 0xdc00 && lo <= 0xdfff) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default: return Err("bad escape");
      }
    }
    return Err("unterminated string");
  }

  bool Number(Value* out) {
    const size_t start = pos_;
    bool is_float = false;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c >= '0' && c <= '9') {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        is_float = true;
        ++pos_;
      } else {
        break;
      }
    }
    if (pos_ == start) return Err("unexpected character");
    const std::string text(s_.substr(start, pos_ - start));
    errno = 0;
    char* end = nullptr;
    if (!is_float) {
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (errno == 0 && end && *end == '\0') {
        *out = Value::Int(v);
        return true;
      }
      errno = 0;
    }
    const double d = std::strtod(text.c_str(), &end);
    if (!end || *end != '\0') return Err("bad number");
    *out = Value::Float(d);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

bool ParseJson(std::string_view text, Value* out, std::string* error) {
  JsonReader reader(text);
  Value v;
  if (!reader.Document(&v, error)) return false;
  *out = std::move(v);
  return true;
}

}  // namespace detail
}  // namespace cvb

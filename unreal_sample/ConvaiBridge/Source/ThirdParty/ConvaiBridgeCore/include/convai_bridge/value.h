// A dynamic msgpack value for the protocol's free-form fields (`any`, `map`): metrics data,
// server_event data, ack results, end_user_metadata. Maps keep their key order so a decoded message
// re-encodes to the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cvb {

class Value;
using ValueMap = std::vector<std::pair<std::string, Value>>;
using StringMap = std::vector<std::pair<std::string, std::string>>;
using Bytes = std::vector<uint8_t>;

class Value {
 public:
  enum class Kind : uint8_t { Nil, Bool, Int, UInt, Float, Str, Bin, Array, Map };

  Value() = default;
  static Value Bool(bool b) { Value v; v.kind_ = Kind::Bool; v.b_ = b; return v; }
  // Integers that fit int64 are Kind::Int; only values above INT64_MAX are Kind::UInt.
  static Value Int(int64_t i) { Value v; v.kind_ = Kind::Int; v.i_ = i; return v; }
  static Value UInt(uint64_t u) {
    if (u <= static_cast<uint64_t>(INT64_MAX)) return Int(static_cast<int64_t>(u));
    Value v; v.kind_ = Kind::UInt; v.u_ = u; return v;
  }
  static Value Float(double f) { Value v; v.kind_ = Kind::Float; v.f_ = f; return v; }
  static Value Str(std::string s) { Value v; v.kind_ = Kind::Str; v.s_ = std::move(s); return v; }
  static Value Bin(std::string bytes) { Value v; v.kind_ = Kind::Bin; v.s_ = std::move(bytes); return v; }
  static Value Array(std::vector<Value> a) { Value v; v.kind_ = Kind::Array; v.a_ = std::move(a); return v; }
  static Value Map(ValueMap m) { Value v; v.kind_ = Kind::Map; v.m_ = std::move(m); return v; }

  Kind kind() const { return kind_; }
  bool IsNil() const { return kind_ == Kind::Nil; }
  bool IsMap() const { return kind_ == Kind::Map; }
  bool IsArray() const { return kind_ == Kind::Array; }
  bool IsStr() const { return kind_ == Kind::Str; }
  bool IsNumber() const { return kind_ == Kind::Int || kind_ == Kind::UInt || kind_ == Kind::Float; }

  bool AsBool(bool fallback = false) const { return kind_ == Kind::Bool ? b_ : fallback; }
  int64_t AsInt(int64_t fallback = 0) const {
    if (kind_ == Kind::Int) return i_;
    if (kind_ == Kind::Float) return static_cast<int64_t>(f_);
    return fallback;
  }
  uint64_t AsUInt() const { return kind_ == Kind::UInt ? u_ : static_cast<uint64_t>(i_); }
  double AsDouble(double fallback = 0.0) const {
    if (kind_ == Kind::Float) return f_;
    if (kind_ == Kind::Int) return static_cast<double>(i_);
    if (kind_ == Kind::UInt) return static_cast<double>(u_);
    return fallback;
  }
  // String or binary payload.
  const std::string& AsStr() const { return s_; }
  const std::vector<Value>& AsArray() const { return a_; }
  const ValueMap& AsMap() const { return m_; }
  std::vector<Value>& MutableArray() { return a_; }
  ValueMap& MutableMap() { return m_; }

  // First value under `key` in a map, or nullptr.
  const Value* Find(const std::string& key) const {
    if (kind_ != Kind::Map) return nullptr;
    for (const auto& kv : m_)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }

  bool operator==(const Value& o) const {
    if (kind_ != o.kind_) return false;
    switch (kind_) {
      case Kind::Nil: return true;
      case Kind::Bool: return b_ == o.b_;
      case Kind::Int: return i_ == o.i_;
      case Kind::UInt: return u_ == o.u_;
      case Kind::Float: return f_ == o.f_;
      case Kind::Str:
      case Kind::Bin: return s_ == o.s_;
      case Kind::Array: return a_ == o.a_;
      case Kind::Map: return m_ == o.m_;
    }
    return false;
  }
  bool operator!=(const Value& o) const { return !(*this == o); }

 private:
  Kind kind_ = Kind::Nil;
  bool b_ = false;
  int64_t i_ = 0;
  uint64_t u_ = 0;
  double f_ = 0.0;
  std::string s_;
  std::vector<Value> a_;
  ValueMap m_;
};

}  // namespace cvb

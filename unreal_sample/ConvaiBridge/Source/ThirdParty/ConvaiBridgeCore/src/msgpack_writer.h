// Canonical msgpack writer. Hand-written rather than msgpack-c's packer because that packer writes a
// double with an integral value (0.0, 1.0) as an integer, while the protocol's canonical form is
// float64 for every float field (PROTOCOL.md section 2).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "convai_bridge/value.h"

namespace cvb {
namespace detail {

class MsgpackWriter {
 public:
  explicit MsgpackWriter(Bytes& out) : out_(out) {}

  void Nil() { Byte(0xc0); }
  void Bool(bool b) { Byte(b ? 0xc3 : 0xc2); }

  void UInt(uint64_t u) {
    if (u < 128) {
      Byte(static_cast<uint8_t>(u));
    } else if (u <= 0xffu) {
      Byte(0xcc);
      Be(u, 1);
    } else if (u <= 0xffffu) {
      Byte(0xcd);
      Be(u, 2);
    } else if (u <= 0xffffffffu) {
      Byte(0xce);
      Be(u, 4);
    } else {
      Byte(0xcf);
      Be(u, 8);
    }
  }

  void Int(int64_t i) {
    if (i >= 0) return UInt(static_cast<uint64_t>(i));
    const uint64_t bits = static_cast<uint64_t>(i);
    if (i >= -32) {
      Byte(static_cast<uint8_t>(bits & 0xffu));
    } else if (i >= INT8_MIN) {
      Byte(0xd0);
      Be(bits, 1);
    } else if (i >= INT16_MIN) {
      Byte(0xd1);
      Be(bits, 2);
    } else if (i >= INT32_MIN) {
      Byte(0xd2);
      Be(bits, 4);
    } else {
      Byte(0xd3);
      Be(bits, 8);
    }
  }

  void Double(double d) {
    uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    Byte(0xcb);
    Be(bits, 8);
  }

  void Str(std::string_view s) {
    const size_t n = s.size();
    if (n < 32) {
      Byte(static_cast<uint8_t>(0xa0u | n));
    } else if (n <= 0xffu) {
      Byte(0xd9);
      Be(n, 1);
    } else if (n <= 0xffffu) {
      Byte(0xda);
      Be(n, 2);
    } else {
      Byte(0xdb);
      Be(n, 4);
    }
    Raw(s.data(), n);
  }

  void Bin(const void* data, size_t n) {
    if (n <= 0xffu) {
      Byte(0xc4);
      Be(n, 1);
    } else if (n <= 0xffffu) {
      Byte(0xc5);
      Be(n, 2);
    } else {
      Byte(0xc6);
      Be(n, 4);
    }
    Raw(data, n);
  }

  void ArrayHeader(size_t n) { Container(n, 0x90, 0xdc, 0xdd); }
  void MapHeader(size_t n) { Container(n, 0x80, 0xde, 0xdf); }

  void Write(const Value& v) {
    switch (v.kind()) {
      case Value::Kind::Nil: return Nil();
      case Value::Kind::Bool: return Bool(v.AsBool());
      case Value::Kind::Int: return Int(v.AsInt());
      case Value::Kind::UInt: return UInt(v.AsUInt());
      case Value::Kind::Float: return Double(v.AsDouble());
      case Value::Kind::Str: return Str(v.AsStr());
      case Value::Kind::Bin: return Bin(v.AsStr().data(), v.AsStr().size());
      case Value::Kind::Array:
        ArrayHeader(v.AsArray().size());
        for (const auto& item : v.AsArray()) Write(item);
        return;
      case Value::Kind::Map:
        MapHeader(v.AsMap().size());
        for (const auto& kv : v.AsMap()) {
          Str(kv.first);
          Write(kv.second);
        }
        return;
    }
  }

 private:
  void Byte(uint8_t b) { out_.push_back(b); }
  void Be(uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<uint8_t>((v >> (8 * i)) & 0xffu));
  }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void Container(size_t n, uint8_t fix, uint8_t c16, uint8_t c32) {
    if (n < 16) {
      Byte(static_cast<uint8_t>(fix | n));
    } else if (n <= 0xffffu) {
      Byte(c16);
      Be(n, 2);
    } else {
      Byte(c32);
      Be(n, 4);
    }
  }

  Bytes& out_;
};

}  // namespace detail
}  // namespace cvb

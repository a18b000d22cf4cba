// UTF-8 <-> UTF-16 for Windows' wide environment and file APIs: %APPDATA% holds the user's name,
// which is often not ASCII, and the narrow (ANSI code page) APIs would mangle it. Portable code,
// so the tests check it on any OS.
#pragma once

#include <cstdint>
#include <string>

namespace cvb {
namespace detail {

// Invalid input (lone surrogates, bad UTF-8) becomes U+FFFD.
inline std::string Utf16ToUtf8(const std::u16string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    uint32_t c = in[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < in.size() && in[i + 1] >= 0xDC00 && in[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (static_cast<uint32_t>(in[i + 1]) - 0xDC00);
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

inline std::u16string Utf8ToUtf16(const std::string& in) {
  std::u16string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const auto b = static_cast<unsigned char>(in[i]);
    uint32_t c = 0xFFFD;
    size_t n = 1;
    if (b < 0x80) {
      c = b;
    } else if (b >= 0xC2 && b < 0xE0) {
      n = 2;
    } else if (b >= 0xE0 && b < 0xF0) {
      n = 3;
    } else if (b >= 0xF0 && b < 0xF5) {
      n = 4;
    }
    if (n > 1) {
      bool ok = i + n <= in.size();
      uint32_t v = b & (0x7F >> n);
      for (size_t k = 1; ok && k < n; ++k) {
        const auto t = static_cast<unsigned char>(in[i + k]);
        ok = (t & 0xC0) == 0x80;
        v = (v << 6) | (t & 0x3F);
      }
      const bool shortest = (n == 3 && v >= 0x800) || (n == 4 && v >= 0x10000) || n == 2;
      if (ok && shortest && v <= 0x10FFFF && !(v >= 0xD800 && v <= 0xDFFF)) {
        c = v;
      } else {
        n = 1;
      }
    }
    i += n;
    if (c >= 0x10000) {
      out.push_back(static_cast<char16_t>(0xD800 + ((c - 0x10000) >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + ((c - 0x10000) & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(c));
    }
  }
  return out;
}

}  // namespace detail
}  // namespace cvb

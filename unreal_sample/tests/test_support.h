// Minimal test harness shared by the test programs: counts passes and failures, prints the failing
// expression with its location, and ends with "N passed, N failed" (ci/test.sh sums those lines).
#pragma once

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "convai_bridge/value.h"

namespace cvbtest {

struct Tally {
  int passed = 0;
  int failed = 0;
};

inline Tally& Counts() {
  static Tally t;
  return t;
}

inline bool Record(bool ok, const char* expr, const char* file, int line, const std::string& note = {}) {
  if (ok) {
    ++Counts().passed;
  } else {
    ++Counts().failed;
    std::fprintf(stderr, "FAIL %s:%d: %s%s%s\n", file, line, expr, note.empty() ? "" : " -- ", note.c_str());
  }
  return ok;
}

inline int Finish(const char* program) {
  std::printf("%s: %d passed, %d failed\n", program, Counts().passed, Counts().failed);
  return Counts().failed == 0 ? 0 : 1;
}

inline bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

inline cvb::Bytes ToBytes(const std::string& s) { return cvb::Bytes(s.begin(), s.end()); }

inline std::string Hex(const cvb::Bytes& b, size_t limit = 64) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < b.size() && i < limit; ++i) {
    out.push_back(digits[b[i] >> 4]);
    out.push_back(digits[b[i] & 15]);
  }
  if (b.size() > limit) out += "...";
  return out;
}

}  // namespace cvbtest

// EXPECT rather than CHECK: Unreal-style `check` names are avoided throughout this code base.
#define EXPECT(cond) ::cvbtest::Record(static_cast<bool>(cond), #cond, __FILE__, __LINE__)
#define EXPECT_MSG(cond, note) ::cvbtest::Record(static_cast<bool>(cond), #cond, __FILE__, __LINE__, (note))

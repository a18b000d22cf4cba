// A small JSON reader for connection.json (and the test suite's vector index): enough JSON to read
// a flat config file without pulling a JSON library into every engine build.
#pragma once

#include <string>
#include <string_view>

#include "convai_bridge/value.h"

namespace cvb {
namespace detail {

// Parses one JSON document into a Value (objects keep key order; integers that fit int64 become
// Kind::Int, other numbers Kind::Float). Returns false with a message on malformed input.
bool ParseJson(std::string_view text, Value* out, std::string* error);

}  // namespace detail
}  // namespace cvb

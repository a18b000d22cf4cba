// Canonical encoder and validating decoder for protocol v1 (PROTOCOL.md section 2).
//
// Deliberately free of msgpack and ZeroMQ headers: Unreal code includes this, and msgpack-c's
// headers clash with Unreal's `check`/`verify` macros (see README). Only src/ sees msgpack-c.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convai_bridge/export.h"
#include "convai_bridge/message.h"

namespace cvb {

// A stable protocol error code (schema "errors" table) with a human message.
struct ProtocolError {
  std::string code;
  std::string message;
  std::optional<int64_t> id;       // the offending message's id, when it had one
  std::optional<std::string> sid;  // the offending message's sid, when it had one
};

struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

struct DecodeResult {
  std::optional<Message> message;  // set on success
  ProtocolError error;             // set on failure
  Value raw_header;                // the header as a map whenever it parsed as one (even on failure)
  bool ok() const { return message.has_value(); }
};

struct EncodeResult {
  std::vector<Bytes> parts;             // frame 0 = header, then the binary frames
  std::optional<ProtocolError> error;   // set when the message is not valid to send
  bool ok() const { return !error.has_value(); }
};

inline constexpr size_t kDefaultMaxMessageBytes = 1u << 20;

// Strict decode, exactly as the reference codec: unknown types fail with `unknown_type` (the client
// layer turns those into msg::Unknown instead of failing). Never throws.
CONVAIBRIDGECORE_API DecodeResult Decode(const std::vector<ByteView>& parts, size_t max_message_bytes = kDefaultMaxMessageBytes);
CONVAIBRIDGECORE_API DecodeResult Decode(const std::vector<Bytes>& parts, size_t max_message_bytes = kDefaultMaxMessageBytes);

// Canonical encode: envelope keys v, type, id, sid, ts, then fields in schema order; optional fields
// omitted; smallest ints; float64 floats; shortest str header. Validates enums, required envelope
// fields and frame sizes. Never throws (except std::bad_alloc).
CONVAIBRIDGECORE_API EncodeResult Encode(const Message& message);

// Expected byte size of binary frame `index` per the header (samples*channels*2, width*count*4),
// or -1 when the message declares no such frame or the header values are out of range.
CONVAIBRIDGECORE_API int64_t ExpectedFrameBytes(const Message& message, size_t index);

}  // namespace cvb

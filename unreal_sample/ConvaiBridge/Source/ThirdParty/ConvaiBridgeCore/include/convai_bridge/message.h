// One protocol message: envelope (id, sid, ts), typed body, binary frames.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "convai_bridge/export.h"
#include "convai_bridge/schema_types.h"
#include "convai_bridge/value.h"

namespace cvb {

struct Message {
  std::optional<int64_t> id;        // request id (uint32 range); echoed by ack/error/welcome/pong
  std::optional<std::string> sid;   // session id assigned by the daemon
  std::optional<int64_t> ts;        // microseconds since the Unix epoch
  Body body;                        // the typed fields; msg::Unknown for types this client does not know
  std::vector<Bytes> frames;        // binary frames 1..n (PCM s16le, float32 LE)

  MessageType type() const { return static_cast<MessageType>(body.index()); }
  const MessageInfo& info() const { return kMessageInfo[body.index()]; }
  // The wire name; for msg::Unknown the name the daemon used.
  CONVAIBRIDGECORE_API std::string type_name() const;

  template <class T>
  const T* As() const { return std::get_if<T>(&body); }
  template <class T>
  T* As() { return std::get_if<T>(&body); }
  template <class T>
  bool Is() const { return std::holds_alternative<T>(body); }
};

template <class T>
Message MakeMessage(T body, std::optional<int64_t> id = std::nullopt, std::optional<std::string> sid = std::nullopt) {
  Message m;
  m.id = id;
  m.sid = std::move(sid);
  m.body = std::move(body);
  return m;
}

CONVAIBRIDGECORE_API const char* MessageTypeName(MessageType type);
CONVAIBRIDGECORE_API std::optional<MessageType> MessageTypeFromName(std::string_view name);
// The schema's row for an error code, or nullptr for a code this version does not know.
CONVAIBRIDGECORE_API const ErrorCodeInfo* FindErrorCode(std::string_view code);
// Microseconds since the Unix epoch (the envelope's ts clock).
CONVAIBRIDGECORE_API int64_t NowMicros();

}  // namespace cvb

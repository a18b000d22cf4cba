// Canonical encoder, message-type helpers, frame-size rules.
#include <chrono>
#include <cstring>
#include <type_traits>

#include "convai_bridge/codec.h"
#include "msgpack_writer.h"
#include "schema_fields.inl"

namespace cvb {
namespace detail {
namespace {

struct EncodeFailure {
  std::string code;
  std::string message;
};

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

void CheckEnum(const std::string& s, const EnumValues* e, const std::string& path) {
  if (e == nullptr) return;
  for (size_t i = 0; i < e->count; ++i)
    if (s == e->items[i]) return;
  throw EncodeFailure{"invalid_field", "'" + path + "' must be one of the " + e->name + " values, got '" + s + "'"};
}

struct CountVisitor {
  size_t count = 0;
  template <class T>
  void operator()(const char* /*name*/, const T& field, const EnumValues* /*e*/) {
    if constexpr (IsOptional<T>::value) {
      if (field.has_value()) ++count;
    } else {
      ++count;
    }
  }
};

template <class S>
void WriteStruct(MsgpackWriter& w, const S& s, const std::string& path);
// Declared up front so the vector overload can find the struct overload (two-phase lookup).
template <class T>
void WriteValue(MsgpackWriter& w, const std::vector<T>& items, const EnumValues* e, const std::string& path);
template <class S, class = std::enable_if_t<std::is_class_v<S> && !IsVector<S>::value>>
void WriteValue(MsgpackWriter& w, const S& s, const EnumValues*, const std::string& path);

void WriteValue(MsgpackWriter& w, const std::string& s, const EnumValues* e, const std::string& path) {
  CheckEnum(s, e, path);
  w.Str(s);
}
void WriteValue(MsgpackWriter& w, int64_t i, const EnumValues*, const std::string&) { w.Int(i); }
void WriteValue(MsgpackWriter& w, bool b, const EnumValues*, const std::string&) { w.Bool(b); }
void WriteValue(MsgpackWriter& w, double d, const EnumValues*, const std::string&) { w.Double(d); }
void WriteValue(MsgpackWriter& w, const Value& v, const EnumValues*, const std::string&) { w.Write(v); }
void WriteValue(MsgpackWriter& w, const ValueMap& m, const EnumValues*, const std::string&) {
  w.MapHeader(m.size());
  for (const auto& kv : m) {
    w.Str(kv.first);
    w.Write(kv.second);
  }
}
void WriteValue(MsgpackWriter& w, const StringMap& m, const EnumValues*, const std::string&) {
  w.MapHeader(m.size());
  for (const auto& kv : m) {
    w.Str(kv.first);
    w.Str(kv.second);
  }
}
template <class T>
void WriteValue(MsgpackWriter& w, const std::vector<T>& items, const EnumValues* e, const std::string& path) {
  w.ArrayHeader(items.size());
  for (size_t i = 0; i < items.size(); ++i) WriteValue(w, items[i], e, path + "[" + std::to_string(i) + "]");
}
template <class S, class>
void WriteValue(MsgpackWriter& w, const S& s, const EnumValues*, const std::string& path) {
  WriteStruct(w, s, path);
}

class WriteVisitor {
 public:
  WriteVisitor(MsgpackWriter& w, std::string prefix) : w_(w), prefix_(std::move(prefix)) {}
  template <class T>
  void operator()(const char* name, const T& field, const EnumValues* e) {
    if constexpr (IsOptional<T>::value) {
      if (!field.has_value()) return;
      w_.Str(name);
      WriteValue(w_, *field, e, prefix_ + name);
    } else {
      w_.Str(name);
      WriteValue(w_, field, e, prefix_ + name);
    }
  }

 private:
  MsgpackWriter& w_;
  std::string prefix_;
};

template <class S>
void WriteStruct(MsgpackWriter& w, const S& s, const std::string& path) {
  // The visitors only read; VisitFields takes non-const references so one definition serves the
  // decoder too.
  S& mut = const_cast<S&>(s);
  CountVisitor counter;
  VisitFields(counter, mut);
  w.MapHeader(counter.count);
  WriteVisitor writer(w, path + ".");
  VisitFields(writer, mut);
}

template <class T>
int64_t FrameBytesFor(const T& body, FrameKind kind) {
  // Multiplications are done in 128-bit-safe steps: any negative or absurd value yields -1.
  auto mul = [](int64_t a, int64_t b, int64_t c) -> int64_t {
    if (a < 0 || b < 0) return -1;
    const uint64_t limit = uint64_t{1} << 40;
    if (static_cast<uint64_t>(a) > limit || static_cast<uint64_t>(b) > limit) return -1;
    const uint64_t r = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
    if (r > limit) return -1;
    return static_cast<int64_t>(r) * c;
  };
  if constexpr (std::is_same_v<T, msg::AudioIn> || std::is_same_v<T, msg::AudioReference> ||
                std::is_same_v<T, msg::AudioOut>) {
    if (kind == FrameKind::PcmS16le) return mul(body.samples, body.channels, 2);
  } else if constexpr (std::is_same_v<T, msg::Blendshapes>) {
    if (kind == FrameKind::F32le) return mul(body.width, body.count, 4);
  }
  (void)body;
  return -1;
}

}  // namespace
}  // namespace detail

int64_t ExpectedFrameBytes(const Message& message, size_t index) {
  const MessageInfo& info = message.info();
  if (index >= info.frame_count) return -1;
  const FrameKind kind = info.frames[index];
  return std::visit([kind](const auto& body) { return detail::FrameBytesFor(body, kind); }, message.body);
}

EncodeResult Encode(const Message& message) {
  EncodeResult result;
  const MessageInfo& info = message.info();
  auto fail = [&](std::string code, std::string text) {
    result.parts.clear();
    result.error = ProtocolError{std::move(code), std::string(info.name) + ": " + text, message.id, message.sid};
    return result;
  };
  if (message.Is<msg::Unknown>()) return fail("unknown_type", "cannot encode a message of unknown type");
  const bool id_optional = message.Is<msg::Error>();  // asynchronous errors carry no id
  if ((info.kind == MessageKind::Request || info.kind == MessageKind::Reply) && !message.id && !id_optional)
    return fail("missing_field", "'id' is required");
  if (info.sid == SidRule::Required && !message.sid) return fail("missing_field", "'sid' is required");
  if (message.frames.size() != info.frame_count)
    return fail("bad_message", "expected " + std::to_string(info.frame_count) + " binary frame(s), got " +
                                   std::to_string(message.frames.size()));
  for (size_t i = 0; i < message.frames.size(); ++i) {
    const int64_t expected = ExpectedFrameBytes(message, i);
    if (expected < 0 || static_cast<int64_t>(message.frames[i].size()) != expected)
      return fail("invalid_field", "binary frame has " + std::to_string(message.frames[i].size()) +
                                       " bytes, header declares " + std::to_string(expected));
  }

  Bytes header;
  header.reserve(128);
  detail::MsgpackWriter w(header);
  const bool with_sid = message.sid.has_value() && info.sid != SidRule::None;
  try {
    std::visit(
        [&](const auto& body) {
          using T = std::decay_t<decltype(body)>;
          if constexpr (!std::is_same_v<T, msg::Unknown>) {
            T& mut = const_cast<T&>(body);
            detail::CountVisitor counter;
            detail::VisitFields(counter, mut);
            const size_t envelope = 2 + (message.id ? 1 : 0) + (with_sid ? 1 : 0) + (message.ts ? 1 : 0);
            w.MapHeader(envelope + counter.count);
            w.Str("v");
            w.Int(kProtocolMajor);
            w.Str("type");
            w.Str(info.name);
            if (message.id) {
              w.Str("id");
              w.Int(*message.id);
            }
            if (with_sid) {
              w.Str("sid");
              w.Str(*message.sid);
            }
            if (message.ts) {
              w.Str("ts");
              w.Int(*message.ts);
            }
            detail::WriteVisitor writer(w, "");
            detail::VisitFields(writer, mut);
          }
        },
        message.body);
  } catch (const detail::EncodeFailure& f) {
    return fail(f.code, f.message);
  }
  result.parts.reserve(1 + message.frames.size());
  result.parts.push_back(std::move(header));
  for (const auto& f : message.frames) result.parts.push_back(f);
  return result;
}

std::string Message::type_name() const {
  if (const auto* u = As<msg::Unknown>()) return u->type;
  return info().name;
}

const char* MessageTypeName(MessageType type) {
  const auto index = static_cast<size_t>(type);
  return index < kMessageTypeCount ? kMessageInfo[index].name : "";
}

std::optional<MessageType> MessageTypeFromName(std::string_view name) {
  for (size_t i = 0; i + 1 < kMessageTypeCount; ++i)  // the last row is msg::Unknown
    if (name == kMessageInfo[i].name) return static_cast<MessageType>(i);
  return std::nullopt;
}

const ErrorCodeInfo* FindErrorCode(std::string_view code) {
  for (const auto& row : kErrorCodes)
    if (code == row.code) return &row;
  return nullptr;
}

int64_t NowMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace cvb

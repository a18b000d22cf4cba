// Validating decoder: msgpack-c parses the header frame, the schema's field visitors check and
// copy it into the typed structs. The rules and their order follow the reference codec
// (bridge/wire/codec.py) so both reject the same inputs with the same codes.
#include <array>
#include <string>
#include <type_traits>
#include <variant>
#include <utility>

#include "convai_bridge/codec.h"
#include "msgpack_include.h"
#include "schema_fields.inl"

namespace cvb {
namespace detail {
namespace {

constexpr int kMaxDepth = 16;  // same nesting bound as the reference codec

struct DecodeFailure {
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

[[noreturn]] void Fail(const char* code, const std::string& text) { throw DecodeFailure{code, text}; }

bool IsInt(const msgpack::object& o) {
  return o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER;
}

std::string KeyOf(const msgpack::object& k) {
  if (k.type == msgpack::type::STR) return std::string(k.via.str.ptr, k.via.str.size);
  if (k.type == msgpack::type::BIN) return std::string(k.via.bin.ptr, k.via.bin.size);
  return std::string();
}

// Last value under `key` (a repeated key behaves like a dict assignment: the last one wins).
const msgpack::object* Find(const msgpack::object& map, const char* key) {
  const msgpack::object* found = nullptr;
  const std::string_view want(key);
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == want)
      found = &kv.val;
  }
  return found;
}

// Map keys must be strings at every level (msgpack's strict_map_key): otherwise bad_message.
bool KeysAreStrings(const msgpack::object& o, int depth) {
  if (depth > 512) return false;
  if (o.type == msgpack::type::MAP) {
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR && kv.key.type != msgpack::type::BIN) return false;
      if (!KeysAreStrings(kv.val, depth + 1)) return false;
    }
  } else if (o.type == msgpack::type::ARRAY) {
    for (uint32_t i = 0; i < o.via.array.size; ++i)
      if (!KeysAreStrings(o.via.array.ptr[i], depth + 1)) return false;
  }
  return true;
}

// strict: the protocol's `any` rules (string keys, no ext, bounded depth) raise invalid_field.
Value ToValue(const msgpack::object& o, const std::string& path, int depth, bool strict) {
  if (strict && depth > kMaxDepth) Fail("invalid_field", "'" + path + "' nests too deeply");
  switch (o.type) {
    case msgpack::type::NIL: return Value();
    case msgpack::type::BOOLEAN: return Value::Bool(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER: return Value::UInt(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return Value::Int(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return Value::Float(o.via.f64);
    case msgpack::type::STR: return Value::Str(std::string(o.via.str.ptr, o.via.str.size));
    case msgpack::type::BIN: return Value::Bin(std::string(o.via.bin.ptr, o.via.bin.size));
    case msgpack::type::ARRAY: {
      std::vector<Value> items;
      items.reserve(o.via.array.size);
      for (uint32_t i = 0; i < o.via.array.size; ++i) items.push_back(ToValue(o.via.array.ptr[i], path, depth + 1, strict));
      return Value::Array(std::move(items));
    }
    case msgpack::type::MAP: {
      ValueMap items;
      items.reserve(o.via.map.size);
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (strict && kv.key.type != msgpack::type::STR) Fail("invalid_field", "'" + path + "' map keys must be strings");
        items.emplace_back(KeyOf(kv.key), ToValue(kv.val, path, depth + 1, strict));
      }
      return Value::Map(std::move(items));
    }
    default:
      if (strict) Fail("invalid_field", "'" + path + "' holds an unsupported value");
      return Value();
  }
}

template <class S>
void ReadStruct(const msgpack::object& o, S& out, const std::string& path, int depth);
template <class T>
void Read(const msgpack::object& o, std::vector<T>& out, const EnumValues* e, const std::string& path, int depth);
template <class S, class = std::enable_if_t<std::is_class_v<S> && !IsVector<S>::value>>
void Read(const msgpack::object& o, S& out, const EnumValues* e, const std::string& path, int depth);

void CheckDepth(const std::string& path, int depth) {
  if (depth > kMaxDepth) Fail("invalid_field", "'" + path + "' nests too deeply");
}

void Read(const msgpack::object& o, std::string& out, const EnumValues* e, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type != msgpack::type::STR) Fail("invalid_field", "'" + path + "' must be a string");
  out.assign(o.via.str.ptr, o.via.str.size);
  if (e == nullptr) return;
  for (size_t i = 0; i < e->count; ++i)
    if (out == e->items[i]) return;
  Fail("invalid_field", "'" + path + "' must be one of the " + e->name + " values");
}

void Read(const msgpack::object& o, int64_t& out, const EnumValues*, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    out = o.via.i64;
  } else if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= static_cast<uint64_t>(INT64_MAX)) {
    out = static_cast<int64_t>(o.via.u64);
  } else {
    Fail("invalid_field", "'" + path + "' must be an integer");
  }
}

void Read(const msgpack::object& o, bool& out, const EnumValues*, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type != msgpack::type::BOOLEAN) Fail("invalid_field", "'" + path + "' must be a boolean");
  out = o.via.boolean;
}

void Read(const msgpack::object& o, double& out, const EnumValues*, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) {
    out = o.via.f64;
  } else if (o.type == msgpack::type::POSITIVE_INTEGER) {
    out = static_cast<double>(o.via.u64);
  } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    out = static_cast<double>(o.via.i64);
  } else {
    Fail("invalid_field", "'" + path + "' must be a number");
  }
}

void Read(const msgpack::object& o, Value& out, const EnumValues*, const std::string& path, int depth) {
  out = ToValue(o, path, depth, true);
}

void Read(const msgpack::object& o, ValueMap& out, const EnumValues*, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type != msgpack::type::MAP) Fail("invalid_field", "'" + path + "' must be a map with string keys");
  Value v = ToValue(o, path, depth, true);
  out = v.AsMap();
}

void Read(const msgpack::object& o, StringMap& out, const EnumValues*, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type != msgpack::type::MAP) Fail("invalid_field", "'" + path + "' must be a map of strings to strings");
  out.clear();
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR || kv.val.type != msgpack::type::STR)
      Fail("invalid_field", "'" + path + "' must be a map of strings to strings");
    out.emplace_back(std::string(kv.key.via.str.ptr, kv.key.via.str.size),
                     std::string(kv.val.via.str.ptr, kv.val.via.str.size));
  }
}

template <class T>
void Read(const msgpack::object& o, std::vector<T>& out, const EnumValues* e, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type != msgpack::type::ARRAY) Fail("invalid_field", "'" + path + "' must be an array");
  out.clear();
  out.resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i)
    Read(o.via.array.ptr[i], out[i], e, path + "[" + std::to_string(i) + "]", depth + 1);
}

template <class S, class>
void Read(const msgpack::object& o, S& out, const EnumValues*, const std::string& path, int depth) {
  CheckDepth(path, depth);
  if (o.type != msgpack::type::MAP) Fail("invalid_field", "'" + path + "' must be a map");
  ReadStruct(o, out, path, depth);
}

class ReadVisitor {
 public:
  ReadVisitor(const msgpack::object& map, std::string prefix, int depth)
      : map_(map), prefix_(std::move(prefix)), depth_(depth) {}

  template <class T>
  void operator()(const char* name, T& field, const EnumValues* e) {
    const msgpack::object* o = Find(map_, name);
    const bool absent = o == nullptr || o->type == msgpack::type::NIL;  // nil counts as absent
    const std::string path = prefix_ + name;
    if constexpr (IsOptional<T>::value) {
      if (absent) {
        field.reset();
        return;
      }
      typename T::value_type value{};
      Read(*o, value, e, path, depth_);
      field = std::move(value);
    } else {
      if (absent) Fail("missing_field", "'" + path + "' is required");
      Read(*o, field, e, path, depth_);
    }
  }

 private:
  const msgpack::object& map_;
  std::string prefix_;
  int depth_;
};

template <class S>
void ReadStruct(const msgpack::object& o, S& out, const std::string& path, int depth) {
  ReadVisitor visitor(o, path + ".", depth + 1);
  VisitFields(visitor, out);
}

std::optional<int64_t> EnvelopeInt(const msgpack::object& map, const char* key, bool strict) {
  const msgpack::object* o = Find(map, key);
  if (o == nullptr || o->type == msgpack::type::NIL) return std::nullopt;
  if (o->type == msgpack::type::NEGATIVE_INTEGER) return o->via.i64;
  if (o->type == msgpack::type::POSITIVE_INTEGER && o->via.u64 <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(o->via.u64);
  if (strict) Fail("invalid_field", std::string("'") + key + "' must be an integer");
  return std::nullopt;
}

std::optional<std::string> EnvelopeStr(const msgpack::object& map, const char* key, bool strict) {
  const msgpack::object* o = Find(map, key);
  if (o == nullptr || o->type == msgpack::type::NIL) return std::nullopt;
  if (o->type == msgpack::type::STR) return std::string(o->via.str.ptr, o->via.str.size);
  if (strict) Fail("invalid_field", std::string("'") + key + "' must be a string");
  return std::nullopt;
}

template <size_t I>
void DecodeAs(const msgpack::object& root, const std::vector<ByteView>& parts, DecodeResult& out) {
  using T = std::variant_alternative_t<I, Body>;
  const MessageInfo& info = kMessageInfo[I];
  Message m;
  m.body.template emplace<I>();
  try {
    m.id = EnvelopeInt(root, "id", true);
    m.sid = EnvelopeStr(root, "sid", true);
    m.ts = EnvelopeInt(root, "ts", true);
    const bool id_optional = std::is_same_v<T, msg::Error>;  // asynchronous errors carry no id
    if ((info.kind == MessageKind::Request || info.kind == MessageKind::Reply) && !m.id && !id_optional)
      Fail("missing_field", "'id' is required");
    if (info.sid == SidRule::Required && !m.sid) Fail("missing_field", "'sid' is required");
    if (info.sid == SidRule::None) m.sid.reset();
    if constexpr (!std::is_same_v<T, msg::Unknown>) {
      ReadVisitor visitor(root, "", 0);
      VisitFields(visitor, std::get<I>(m.body));
    }
  } catch (const DecodeFailure& f) {
    out.error = ProtocolError{f.code, std::string(info.name) + ": " + f.message, m.id, m.sid};
    return;
  }
  const size_t frames = parts.size() - 1;
  if (frames != info.frame_count) {
    out.error = ProtocolError{"bad_message",
                              std::string(info.name) + ": expected " + std::to_string(info.frame_count) +
                                  " binary frame(s), got " + std::to_string(frames),
                              m.id, m.sid};
    return;
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const int64_t expected = ExpectedFrameBytes(m, i - 1);
    if (expected < 0 || static_cast<int64_t>(parts[i].size) != expected) {
      out.error = ProtocolError{"invalid_field",
                                std::string(info.name) + ": binary frame has " + std::to_string(parts[i].size) +
                                    " bytes, header declares " + std::to_string(expected),
                                m.id, m.sid};
      return;
    }
    m.frames.emplace_back(parts[i].data, parts[i].data + parts[i].size);
  }
  out.message = std::move(m);
}

using DecodeFn = void (*)(const msgpack::object&, const std::vector<ByteView>&, DecodeResult&);

template <size_t... I>
constexpr auto MakeTable(std::index_sequence<I...>) {
  return std::array<DecodeFn, sizeof...(I)>{&DecodeAs<I>...};
}

const auto kDecoders = MakeTable(std::make_index_sequence<std::variant_size_v<Body>>{});

}  // namespace
}  // namespace detail

DecodeResult Decode(const std::vector<ByteView>& parts, size_t max_message_bytes) {
  using detail::Fail;
  DecodeResult out;
  if (parts.empty()) {
    out.error = ProtocolError{"bad_message", "empty message", std::nullopt, std::nullopt};
    return out;
  }
  size_t total = 0;
  for (const auto& p : parts) total += p.size;
  if (total > max_message_bytes) {
    out.error = ProtocolError{"message_too_large",
                              "message of " + std::to_string(total) + " bytes exceeds " + std::to_string(max_message_bytes),
                              std::nullopt, std::nullopt};
    return out;
  }
  msgpack::object_handle handle;
  try {
    std::size_t offset = 0;
    const msgpack::unpack_limit limit(1u << 20, 1u << 20, max_message_bytes, max_message_bytes,
                                      max_message_bytes, 256);
    handle = msgpack::unpack(reinterpret_cast<const char*>(parts[0].data), parts[0].size, offset, nullptr, nullptr,
                             limit);
    if (offset != parts[0].size) {
      out.error = ProtocolError{"bad_message", "header has trailing bytes after the msgpack map", std::nullopt, std::nullopt};
      return out;
    }
  } catch (const std::exception& e) {
    out.error = ProtocolError{"bad_message", std::string("header is not valid msgpack: ") + e.what(), std::nullopt,
                              std::nullopt};
    return out;
  }
  const msgpack::object& root = handle.get();
  if (!detail::KeysAreStrings(root, 0)) {
    out.error = ProtocolError{"bad_message", "map keys must be strings", std::nullopt, std::nullopt};
    return out;
  }
  if (root.type != msgpack::type::MAP) {
    out.error = ProtocolError{"bad_message", "header must be a msgpack map", std::nullopt, std::nullopt};
    return out;
  }
  out.raw_header = detail::ToValue(root, "", 0, false);
  const std::optional<int64_t> id = detail::EnvelopeInt(root, "id", false);
  const std::optional<std::string> sid = detail::EnvelopeStr(root, "sid", false);
  const msgpack::object* v = detail::Find(root, "v");
  if (v == nullptr || !detail::IsInt(*v)) {
    out.error = ProtocolError{"missing_field", "envelope field 'v' (protocol major) is required", id, sid};
    return out;
  }
  const bool same_major = v->type == msgpack::type::POSITIVE_INTEGER && v->via.u64 == static_cast<uint64_t>(kProtocolMajor);
  if (!same_major) {
    const std::string got = v->type == msgpack::type::POSITIVE_INTEGER ? std::to_string(v->via.u64) : std::to_string(v->via.i64);
    out.error = ProtocolError{"version_mismatch",
                              "message is protocol v" + got + ", this side speaks v" + std::to_string(kProtocolMajor), id,
                              sid};
    return out;
  }
  const msgpack::object* type = detail::Find(root, "type");
  if (type == nullptr || type->type != msgpack::type::STR) {
    out.error = ProtocolError{"missing_field", "envelope field 'type' is required", id, sid};
    return out;
  }
  const std::string name(type->via.str.ptr, type->via.str.size);
  const std::optional<MessageType> mt = MessageTypeFromName(name);
  if (!mt) {
    out.error = ProtocolError{"unknown_type", "unknown message type '" + name + "'", id, sid};
    return out;
  }
  detail::kDecoders[static_cast<size_t>(*mt)](root, parts, out);
  return out;
}

DecodeResult Decode(const std::vector<Bytes>& parts, size_t max_message_bytes) {
  std::vector<ByteView> views;
  views.reserve(parts.size());
  for (const auto& p : parts) views.push_back(ByteView{p.data(), p.size()});
  return Decode(views, max_message_bytes);
}

}  // namespace cvb

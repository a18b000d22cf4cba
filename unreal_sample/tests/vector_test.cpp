// Golden vectors: every protocol/vectors message decodes into its typed struct and re-encodes byte
// for byte; every invalid/ input is rejected with the expected code.
#include <set>
#include <string>
#include <vector>

#include "convai_bridge/codec.h"
#include "json_lite.h"
#include "test_support.h"

using cvb::Bytes;

namespace {

std::string g_dir;

bool LoadJson(const std::string& path, cvb::Value* out) {
  std::string text, error;
  if (!cvbtest::ReadFile(path, &text)) return false;
  return cvb::detail::ParseJson(text, out, &error);
}

bool LoadParts(const std::string& base, int64_t count, std::vector<Bytes>* parts) {
  std::string data;
  if (!cvbtest::ReadFile(base + ".msgpack", &data)) return false;
  parts->push_back(cvbtest::ToBytes(data));
  for (int64_t i = 1; i < count; ++i) {
    if (!cvbtest::ReadFile(base + "." + std::to_string(i) + ".bin", &data)) return false;
    parts->push_back(cvbtest::ToBytes(data));
  }
  return true;
}

void GoldenVectors() {
  cvb::Value index;
  if (!EXPECT_MSG(LoadJson(g_dir + "/index.json", &index), g_dir + "/index.json")) return;
  const cvb::Value* messages = index.Find("messages");
  if (!EXPECT(messages && messages->IsMap())) return;
  const cvb::Value* version = index.Find("protocol");
  EXPECT(version && version->AsStr() == cvb::kProtocolVersion);

  std::set<std::string> seen;
  for (const auto& [name, count] : messages->AsMap()) {
    seen.insert(name);
    std::vector<Bytes> parts;
    if (!EXPECT_MSG(LoadParts(g_dir + "/" + name, count.AsInt(), &parts), name)) continue;
    cvb::DecodeResult decoded = cvb::Decode(parts);
    if (!EXPECT_MSG(decoded.ok(), name + ": " + decoded.error.code + " " + decoded.error.message)) continue;
    const cvb::Message& m = *decoded.message;
    EXPECT_MSG(m.type_name() == name, name);
    EXPECT_MSG(!m.Is<cvb::msg::Unknown>(), name);
    EXPECT_MSG(m.frames.size() + 1 == parts.size(), name);
    cvb::EncodeResult encoded = cvb::Encode(m);
    if (!EXPECT_MSG(encoded.ok(), name + ": " + (encoded.error ? encoded.error->message : ""))) continue;
    if (!EXPECT_MSG(encoded.parts.size() == parts.size(), name)) continue;
    for (size_t i = 0; i < parts.size(); ++i)
      EXPECT_MSG(encoded.parts[i] == parts[i],
                 name + " part " + std::to_string(i) + "\n  want " + cvbtest::Hex(parts[i], 400) + "\n  got  " +
                     cvbtest::Hex(encoded.parts[i], 400));
  }
  // Every message type this core knows has a vector, and every vector is a type it knows.
  for (size_t i = 0; i + 1 < cvb::kMessageTypeCount; ++i)
    EXPECT_MSG(seen.count(cvb::kMessageInfo[i].name) == 1, std::string("no vector for ") + cvb::kMessageInfo[i].name);
  EXPECT(seen.size() + 1 == cvb::kMessageTypeCount);
}

void TypedFields() {
  // Spot-check that decoding really fills the typed structs (not just round-trips bytes).
  std::vector<Bytes> parts;
  if (LoadParts(g_dir + "/session_open", 1, &parts)) {
    auto r = cvb::Decode(parts);
    const auto* open = r.ok() ? r.message->As<cvb::msg::SessionOpen>() : nullptr;
    if (EXPECT(open != nullptr)) {
      EXPECT(open->character_id == "c0ffee00-0000-4000-8000-000000000001");
      EXPECT(open->backend && *open->backend == "live");
      EXPECT(open->audio && open->audio->sample_rate == 44100 && open->audio->channels == 2);
      EXPECT(open->action_config && open->action_config->actions && open->action_config->actions->size() == 2);
      EXPECT(open->lipsync && open->lipsync->provider == "blendshapes" && open->lipsync->fps == 60);
      EXPECT(open->end_user_metadata && open->end_user_metadata->at(0).second.AsStr() == "Alice");
      EXPECT(r.message->id == 2 && !r.message->sid);
    }
  }
  parts.clear();
  if (LoadParts(g_dir + "/visemes", 1, &parts)) {
    auto r = cvb::Decode(parts);
    const auto* v = r.ok() ? r.message->As<cvb::msg::Visemes>() : nullptr;
    if (EXPECT(v != nullptr)) {
      EXPECT(v->weights.size() == 15 && v->weights[1] == 0.5 && v->weights[10] == 0.25);
      EXPECT(v->turn == 3 && v->offset == 4410);
      EXPECT(r.message->sid == std::string("s-8f3a2c") && r.message->ts == 1763771400520000LL);
    }
  }
  parts.clear();
  if (LoadParts(g_dir + "/audio_out", 2, &parts)) {
    auto r = cvb::Decode(parts);
    const auto* a = r.ok() ? r.message->As<cvb::msg::AudioOut>() : nullptr;
    if (EXPECT(a != nullptr)) {
      EXPECT(a->samples == 2 && a->channels == 2 && r.message->frames.at(0).size() == 8);
      EXPECT(cvb::ExpectedFrameBytes(*r.message, 0) == 8);
    }
  }
}

void InvalidVectors() {
  cvb::Value expected;
  if (!EXPECT(LoadJson(g_dir + "/invalid/expected.json", &expected) && expected.IsMap())) return;
  EXPECT(!expected.AsMap().empty());
  for (const auto& [name, spec] : expected.AsMap()) {
    const cvb::Value* code = spec.Find("code");
    const cvb::Value* frames = spec.Find("frames");
    std::vector<Bytes> parts;
    if (!EXPECT_MSG(code && frames && LoadParts(g_dir + "/invalid/" + name, frames->AsInt(), &parts), name)) continue;
    cvb::DecodeResult r = cvb::Decode(parts);
    EXPECT_MSG(!r.ok(), name);
    EXPECT_MSG(r.error.code == code->AsStr(), name + ": want " + code->AsStr() + ", got " + r.error.code + " (" +
                                                  r.error.message + ")");
    EXPECT_MSG(cvb::FindErrorCode(r.error.code) != nullptr, name + ": code not in the schema table");
  }
}

void EncoderRejects() {
  // The encoder refuses what the decoder would refuse, so the client never sends an invalid message.
  cvb::msg::SessionOpen open;
  open.character_id = "c";
  open.backend = "grpc";
  auto r = cvb::Encode(cvb::MakeMessage(open, 2));
  EXPECT(!r.ok() && r.error->code == "invalid_field");
  auto no_id = cvb::Encode(cvb::MakeMessage(cvb::msg::Text{"hi"}, std::nullopt, std::string("s-1")));
  EXPECT(!no_id.ok() && no_id.error->code == "missing_field");
  auto no_sid = cvb::Encode(cvb::MakeMessage(cvb::msg::Text{"hi"}, 3));
  EXPECT(!no_sid.ok() && no_sid.error->code == "missing_field");
  cvb::msg::AudioIn in;
  in.seq = 1;
  in.sample_rate = 16000;
  in.channels = 1;
  in.samples = 4;
  cvb::Message m = cvb::MakeMessage(in, std::nullopt, std::string("s-1"));
  auto missing_frame = cvb::Encode(m);
  EXPECT(!missing_frame.ok() && missing_frame.error->code == "bad_message");
  m.frames.push_back(Bytes(6, 0));
  auto short_frame = cvb::Encode(m);
  EXPECT(!short_frame.ok() && short_frame.error->code == "invalid_field");
  m.frames[0].resize(8);
  auto good = cvb::Encode(m);
  EXPECT(good.ok() && good.parts.size() == 2);
  // sid on a sid-less type is dropped, as the reference codec does.
  auto ping = cvb::Encode(cvb::MakeMessage(cvb::msg::Ping{}, 7, std::string("s-1")));
  EXPECT(ping.ok());
  if (ping.ok()) EXPECT(cvb::Decode(ping.parts).message->sid == std::nullopt);
}

}  // namespace

int main(int argc, char** argv) {
  g_dir = argc > 1 ? argv[1] : "protocol/vectors";
  GoldenVectors();
  TypedFields();
  InvalidVectors();
  EncoderRejects();
  return cvbtest::Finish("vector_test");
}

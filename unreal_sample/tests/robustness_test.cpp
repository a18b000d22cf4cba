// The client against a hand-driven daemon (a real ZeroMQ ROUTER in this process): handshake,
// malformed and unknown messages, heartbeats both ways, request ids, timeouts, handler exceptions,
// reconnects (not_ready, silent daemon), version mismatch, bad token. Plus a decoder fuzz over the
// golden vectors.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "convai_bridge/client.h"
#include "convai_bridge/codec.h"
#include "msgpack_writer.h"
#include "test_support.h"

using cvb::Bytes;
using cvb::Message;
using Clock = std::chrono::steady_clock;

namespace {

const char* kToken = "test-token-1234";

// ---- a daemon driven by hand --------------------------------------------------------------------

struct Incoming {
  std::string identity;
  std::optional<Message> message;
  std::string raw_error;
};

class FakeDaemon {
 public:
  FakeDaemon() : router_(ctx_, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  std::optional<Incoming> Recv(int timeout_ms) {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
    Incoming in;
    in.identity = parts[0].to_string();
    std::vector<Bytes> body;
    for (size_t i = 1; i < parts.size(); ++i)
      body.emplace_back(static_cast<const uint8_t*>(parts[i].data()),
                        static_cast<const uint8_t*>(parts[i].data()) + parts[i].size());
    auto r = cvb::Decode(body);
    if (r.ok()) in.message = std::move(r.message);
    else in.raw_error = r.error.code;
    return in;
  }

  void SendRaw(const std::string& identity, const std::vector<Bytes>& parts) {
    router_.send(zmq::buffer(identity), zmq::send_flags::sndmore);
    for (size_t i = 0; i < parts.size(); ++i)
      router_.send(zmq::buffer(parts[i].data(), parts[i].size()),
                   i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }

  void Send(const std::string& identity, const Message& m) {
    auto e = cvb::Encode(m);
    if (!e.ok()) throw std::runtime_error("test built an invalid message: " + e.error->message);
    SendRaw(identity, e.parts);
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t router_;
  std::string endpoint_;
};

// ---- helpers --------------------------------------------------------------------------------------

struct Seen {
  std::vector<std::pair<cvb::NpcId, Message>> messages;
  std::vector<cvb::ConnectionEvent> connection;
  std::vector<std::string> problems;
};

void Attach(cvb::Client& client, Seen& seen) {
  client.SetMessageHandler([&seen](cvb::NpcId npc, const Message& m) {
    seen.messages.emplace_back(npc, m);
    if (const auto* t = m.As<cvb::msg::BotText>(); t && t->text == "boom") throw std::runtime_error("handler boom");
  });
  client.SetConnectionHandler([&seen](const cvb::ConnectionEvent& e) { seen.connection.push_back(e); });
  client.SetProblemHandler([&seen](const std::string& w) { seen.problems.push_back(w); });
}

// Pumps the client's game-thread queue while waiting for the fake daemon to receive a message that
// satisfies `want` (other messages are answered when they are pings, else ignored).
std::optional<Incoming> Expect(FakeDaemon& d, cvb::Client& c, const std::function<bool(const Incoming&)>& want,
                               int timeout_ms, bool answer_pings = true) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < end) {
    c.Poll();
    auto in = d.Recv(10);
    if (!in) continue;
    if (want(*in)) return in;
    if (answer_pings && in->message && in->message->Is<cvb::msg::Ping>())
      d.Send(in->identity, cvb::MakeMessage(cvb::msg::Pong{}, in->message->id));
  }
  c.Poll();
  return std::nullopt;
}

std::function<bool(const Incoming&)> OfType(cvb::MessageType t) {
  return [t](const Incoming& in) { return in.message && in.message->type() == t; };
}

// Pumps the client until pred holds; the fake daemon (when given) keeps answering pings meanwhile.
bool PumpUntil(cvb::Client& c, const std::function<bool()>& pred, int timeout_ms, FakeDaemon* d = nullptr) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < end) {
    c.Poll();
    if (pred()) return true;
    if (d) {
      if (auto in = d->Recv(5); in && in->message && in->message->Is<cvb::msg::Ping>())
        d->Send(in->identity, cvb::MakeMessage(cvb::msg::Pong{}, in->message->id));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  c.Poll();
  return pred();
}

template <class T>
const T* Last(const Seen& seen, cvb::NpcId* npc = nullptr) {
  for (auto it = seen.messages.rbegin(); it != seen.messages.rend(); ++it)
    if (const T* m = it->second.As<T>()) {
      if (npc) *npc = it->first;
      return m;
    }
  return nullptr;
}

Message Welcome(int64_t id, const std::string& instance, int heartbeat_ms, int timeout_ms) {
  cvb::msg::Welcome w;
  w.protocol = "1.0";
  w.daemon_version = "fake";
  w.instance_id = instance;
  w.backends = {"interaction"};
  w.capabilities = {};
  w.limits = cvb::Limits{1 << 20, 8, heartbeat_ms, timeout_ms, 2000, 100};
  return cvb::MakeMessage(w, id);
}

Message SessionOpened(const std::string& sid, const std::string& csid) {
  cvb::msg::SessionOpened o;
  o.character_id = "c";
  o.character_session_id = csid;
  o.backend = "interaction";
  o.resumed = false;
  o.audio = cvb::AudioFormat{48000, 1, 20};
  o.capabilities = {"audio_in", "audio_out"};
  return cvb::MakeMessage(o, std::nullopt, sid);
}

// Hand-made msgpack headers (the daemon side of the malformed-input tests).
Bytes Header(const std::function<void(cvb::detail::MsgpackWriter&)>& body, size_t pairs) {
  Bytes out;
  cvb::detail::MsgpackWriter w(out);
  w.MapHeader(pairs);
  body(w);
  return out;
}

std::string WriteConnectionFile(const std::string& endpoint, const std::string& token) {
  const std::string path = "/tmp/cvb-robustness-" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << "{\"endpoint\": \"" << endpoint << "\", \"token\": \"" << token
                      << "\", \"pid\": 1, \"instance_id\": \"x\"}";
  return path;
}

// ---- scenarios ------------------------------------------------------------------------------------

void Conversation() {
  FakeDaemon d;
  const std::string file = WriteConnectionFile(d.endpoint(), kToken);
  cvb::ClientOptions opts;
  opts.connection_file = file;
  opts.request_timeout_ms = 800;
  cvb::Client client(opts);
  Seen seen;
  Attach(client, seen);
  client.Start();

  // Handshake: hello carries the token from the connection file.
  auto hello = Expect(d, client, OfType(cvb::MessageType::Hello), 5000);
  if (!EXPECT(hello.has_value())) return;
  const auto& h = *hello->message->As<cvb::msg::Hello>();
  EXPECT(h.protocol == cvb::kProtocolVersion && h.token == kToken && h.client == cvb::kClientName);
  EXPECT(h.engine && *h.engine == "unreal");
  d.Send(hello->identity, Welcome(*hello->message->id, "inst-1", 300, 1500));
  EXPECT(PumpUntil(client, [&] { return client.State() == cvb::ConnectionState::Ready; }, 2000, &d));
  EXPECT(client.InstanceId() == "inst-1");
  EXPECT(client.CurrentLimits() && client.CurrentLimits()->heartbeat_ms == 300);
  const std::string id1 = hello->identity;

  // Open an NPC: session_open with defaults filled in; the ack's sid routes later events.
  cvb::msg::SessionOpen cfg;
  cfg.character_id = "c";
  cfg.backend = "interaction";
  auto open = client.OpenNpc(cfg);
  auto so = Expect(d, client, OfType(cvb::MessageType::SessionOpen), 2000);
  if (!EXPECT(so.has_value())) return;
  const auto& open_msg = *so->message->As<cvb::msg::SessionOpen>();
  EXPECT(open_msg.audio && open_msg.audio->sample_rate == 48000 && open_msg.audio->channels == 1);
  EXPECT(!open_msg.character_session_id);
  d.Send(id1, cvb::MakeMessage(cvb::msg::Ack{}, so->message->id, std::string("s-1")));
  d.Send(id1, SessionOpened("s-1", "csid-1"));
  EXPECT(open.reply.wait_for(std::chrono::seconds(2)) == std::future_status::ready && open.reply.get().ok);
  EXPECT(PumpUntil(client, [&] { auto st = client.Status(open.npc); return st && st->ready; }, 2000, &d));
  EXPECT(client.Status(open.npc)->character_session_id == "csid-1");
  EXPECT(client.Status(open.npc)->sid == "s-1");

  // Malformed and unknown input from the daemon side: none of it may stop the client.
  const size_t problems_before = seen.problems.size();
  d.SendRaw(id1, {Bytes{0xc1}});                                    // not msgpack
  d.SendRaw(id1, {Bytes{0x93, 0x01, 0x02, 0x03}});                  // not a map
  d.SendRaw(id1, {Header([](auto& w) { w.Str("v"); w.Int(2); w.Str("type"); w.Str("bot_text"); }, 2)});  // v2
  Bytes truncated = cvb::Encode(cvb::MakeMessage(cvb::msg::BotText{1, "hello"}, std::nullopt, std::string("s-1"))).parts[0];
  truncated.resize(truncated.size() - 3);
  d.SendRaw(id1, {truncated});
  d.SendRaw(id1, {Header([](auto& w) {                              // bot_text without its turn
                    w.Str("v"); w.Int(1); w.Str("type"); w.Str("bot_text"); w.Str("sid"); w.Str("s-1");
                    w.Str("text"); w.Str("x");
                  }, 4)});
  d.SendRaw(id1, {Header([](auto& w) {                              // visemes with a string offset
                    w.Str("v"); w.Int(1); w.Str("type"); w.Str("visemes"); w.Str("sid"); w.Str("s-1");
                    w.Str("turn"); w.Int(1); w.Str("offset"); w.Str("zero"); w.Str("weights"); w.ArrayHeader(0);
                  }, 6)});
  {
    cvb::msg::AudioOut a;  // frame shorter than declared
    a.turn = 1;
    a.seq = 0;
    a.offset = 0;
    a.sample_rate = 48000;
    a.channels = 1;
    a.samples = 960;
    auto parts = cvb::Encode([&] {
                   Message m = cvb::MakeMessage(a, std::nullopt, std::string("s-1"));
                   m.frames.push_back(Bytes(1920, 0));
                   return m;
                 }()).parts;
    parts[1].resize(100);
    d.SendRaw(id1, parts);
  }
  // A future event type, and a known one with fields this version has never heard of.
  d.SendRaw(id1, {Header([](auto& w) {
                    w.Str("v"); w.Int(1); w.Str("type"); w.Str("hologram_frame"); w.Str("sid"); w.Str("s-1");
                    w.Str("ts"); w.Int(5); w.Str("layers"); w.ArrayHeader(2); w.Int(1); w.Double(2.5);
                  }, 5)});
  d.SendRaw(id1, {Header([](auto& w) {
                    w.Str("v"); w.Int(1); w.Str("type"); w.Str("bot_text"); w.Str("sid"); w.Str("s-1");
                    w.Str("turn"); w.Int(1); w.Str("shiny_new_field"); w.MapHeader(1); w.Str("k"); w.Nil();
                    w.Str("text"); w.Str("still fine"); w.Str("another"); w.Double(1.0);
                  }, 7)});
  d.Send(id1, cvb::MakeMessage(cvb::msg::BotText{1, "boom"}, std::nullopt, std::string("s-1")));  // handler throws
  d.Send(id1, cvb::MakeMessage(cvb::msg::Ping{}, int64_t{77}));                                  // daemon ping
  cvb::msg::TurnCompleted done;
  done.turn = 1;
  done.interrupted = false;
  d.Send(id1, cvb::MakeMessage(done, std::nullopt, std::string("s-1")));

  auto pong = Expect(d, client, [](const Incoming& in) { return in.message && in.message->Is<cvb::msg::Pong>(); }, 2000);
  EXPECT(pong && pong->message->id == 77);
  EXPECT(PumpUntil(client, [&] { return Last<cvb::msg::TurnCompleted>(seen) != nullptr; }, 2000, &d));
  cvb::NpcId npc = 0;
  const auto* unknown = Last<cvb::msg::Unknown>(seen, &npc);
  EXPECT(unknown && unknown->type == "hologram_frame" && npc == open.npc);
  if (unknown) {
    const cvb::Value* layers = unknown->header.Find("layers");
    EXPECT(layers && layers->IsArray() && layers->AsArray().size() == 2);
  }
  bool saw_still_fine = false;
  for (auto& [n, m] : seen.messages)
    if (const auto* t = m.As<cvb::msg::BotText>(); t && t->text == "still fine" && n == open.npc) saw_still_fine = true;
  EXPECT(saw_still_fine);
  const auto stats = client.Stats();
  EXPECT_MSG(stats.decode_errors == 7, "decode_errors=" + std::to_string(stats.decode_errors));
  EXPECT(stats.unknown_messages == 1);
  EXPECT(stats.handler_exceptions == 1);
  EXPECT(stats.pings_answered >= 1);
  EXPECT(seen.problems.size() >= problems_before + 8);  // 7 undecodable + 1 handler exception

  // Heartbeat: with nothing to say the client pings within heartbeat_ms (300 ms here).
  auto ping = Expect(d, client, OfType(cvb::MessageType::Ping), 1500);
  EXPECT(ping.has_value() && ping->message->id.has_value());
  if (ping) d.Send(id1, cvb::MakeMessage(cvb::msg::Pong{}, ping->message->id));

  // Requests: ids correlate acks and errors.
  auto text = client.SendText(open.npc, "hi");
  auto req = Expect(d, client, OfType(cvb::MessageType::Text), 2000);
  if (EXPECT(req.has_value())) {
    EXPECT(req->message->sid == std::string("s-1") && req->message->As<cvb::msg::Text>()->text == "hi");
    cvb::msg::Ack ack;
    ack.turn = 5;
    d.Send(id1, cvb::MakeMessage(ack, req->message->id, std::string("s-1")));
  }
  EXPECT(text.wait_for(std::chrono::seconds(2)) == std::future_status::ready);
  auto text_reply = text.get();
  EXPECT(text_reply.ok && text_reply.turn == 5);
  auto trig = client.Trigger(open.npc, "wave");
  req = Expect(d, client, OfType(cvb::MessageType::Trigger), 2000);
  if (EXPECT(req.has_value())) {
    cvb::msg::Error err;
    err.code = "busy";
    err.message = "one turn at a time";
    err.retryable = true;
    err.fatal = false;
    d.Send(id1, cvb::MakeMessage(err, req->message->id, std::string("s-1")));
  }
  EXPECT(trig.wait_for(std::chrono::seconds(2)) == std::future_status::ready);
  auto trig_reply = trig.get();
  EXPECT(!trig_reply.ok && trig_reply.code == "busy" && trig_reply.retryable);
  // Callbacks run on the Poll thread.
  bool callback_ran = false;
  auto cb_future = client.SetTts(open.npc, false, [&](const cvb::Reply& r) { callback_ran = r.ok; });
  req = Expect(d, client, OfType(cvb::MessageType::TtsToggle), 2000);
  if (req) d.Send(id1, cvb::MakeMessage(cvb::msg::Ack{}, req->message->id, std::string("s-1")));
  EXPECT(PumpUntil(client, [&] { return callback_ran; }, 2000, &d));
  // No answer: the request times out locally (request_timeout_ms = 800).
  auto lost = client.SendText(open.npc, "anyone?");
  EXPECT(Expect(d, client, OfType(cvb::MessageType::Text), 2000).has_value());
  EXPECT(PumpUntil(client, [&] { return lost.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, 3000, &d));
  if (lost.valid() && lost.wait_for(std::chrono::seconds(0)) == std::future_status::ready) EXPECT(lost.get().code == "timeout");
  // Mic audio: seq increases per frame, the frame is the PCM.
  std::vector<int16_t> pcm(320, 1000);
  EXPECT(client.SendAudio(open.npc, pcm.data(), 320, 16000, 1));
  EXPECT(client.SendAudio(open.npc, pcm.data(), 320, 16000, 1));
  auto a1 = Expect(d, client, OfType(cvb::MessageType::AudioIn), 2000);
  auto a2 = Expect(d, client, OfType(cvb::MessageType::AudioIn), 2000);
  if (EXPECT(a1 && a2)) {
    const auto& x = *a1->message->As<cvb::msg::AudioIn>();
    const auto& y = *a2->message->As<cvb::msg::AudioIn>();
    EXPECT(y.seq == x.seq + 1 && x.samples == 320 && x.sample_rate == 16000 && a1->message->frames.at(0).size() == 640);
  }

  // not_ready: the daemon forgot us (it restarted). The client handshakes again on a new socket and
  // reopens the NPC with the character_session_id it was given.
  auto probe = client.SendText(open.npc, "are you there?");
  req = Expect(d, client, OfType(cvb::MessageType::Text), 2000);
  if (EXPECT(req.has_value())) {
    cvb::msg::Error err;
    err.code = "not_ready";
    err.message = "send hello first";
    err.retryable = false;
    err.fatal = false;
    d.Send(id1, cvb::MakeMessage(err, req->message->id, std::string("s-1")));
  }
  auto hello2 = Expect(d, client, OfType(cvb::MessageType::Hello), 3000);
  if (!EXPECT(hello2.has_value())) return;
  EXPECT(hello2->identity != id1);  // a fresh DEALER
  EXPECT(probe.wait_for(std::chrono::seconds(1)) == std::future_status::ready && probe.get().code == "connection_lost");
  const size_t conn_before = seen.connection.size();
  d.Send(hello2->identity, Welcome(*hello2->message->id, "inst-2", 300, 1500));
  auto reopen = Expect(d, client, OfType(cvb::MessageType::SessionOpen), 2000);
  if (EXPECT(reopen.has_value())) {
    const auto& ro = *reopen->message->As<cvb::msg::SessionOpen>();
    EXPECT(ro.character_session_id && *ro.character_session_id == "csid-1");
    d.Send(hello2->identity, cvb::MakeMessage(cvb::msg::Ack{}, reopen->message->id, std::string("s-2")));
    d.Send(hello2->identity, SessionOpened("s-2", "csid-1"));
  }
  EXPECT(PumpUntil(client, [&] { auto st = client.Status(open.npc); return st && st->ready && st->sid == "s-2"; }, 2000, &d));
  bool restarted = false;
  for (size_t i = conn_before; i < seen.connection.size(); ++i)
    if (seen.connection[i].state == cvb::ConnectionState::Ready && seen.connection[i].instance_changed) restarted = true;
  EXPECT(restarted);
  EXPECT(client.Status(open.npc)->opens == 2);

  // A silent daemon: nothing arrives for client_timeout_ms (1500) -> new socket, new hello.
  const auto silent_from = Clock::now();
  auto hello3 = Expect(d, client, OfType(cvb::MessageType::Hello), 5000, /*answer_pings=*/false);
  if (EXPECT(hello3.has_value())) {
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - silent_from).count();
    EXPECT_MSG(waited >= 1200 && waited < 4000, "reconnected after " + std::to_string(waited) + " ms");
    EXPECT(hello3->identity != hello2->identity);
    d.Send(hello3->identity, Welcome(*hello3->message->id, "inst-2", 300, 1500));
    auto reopen3 = Expect(d, client, OfType(cvb::MessageType::SessionOpen), 2000);
    EXPECT(reopen3 && reopen3->message->As<cvb::msg::SessionOpen>()->character_session_id == std::string("csid-1"));
  }
  EXPECT(PumpUntil(client, [&] { return client.State() == cvb::ConnectionState::Ready; }, 1000, &d));
  bool same_instance_ready = false;
  for (auto& e : seen.connection)
    if (e.state == cvb::ConnectionState::Ready && e.instance_id == "inst-2" && !e.instance_changed) same_instance_ready = true;
  EXPECT(same_instance_ready);
  client.Stop();
  EXPECT(client.State() == cvb::ConnectionState::Stopped);
  std::remove(file.c_str());
}

void Refusals() {
  // version_mismatch is final: no retries.
  {
    FakeDaemon d;
    cvb::ClientOptions opts;
    opts.endpoint = d.endpoint();
    opts.token = kToken;
    cvb::Client client(opts);
    Seen seen;
    Attach(client, seen);
    client.Start();
    auto hello = Expect(d, client, OfType(cvb::MessageType::Hello), 5000);
    if (EXPECT(hello.has_value())) {
      cvb::msg::Error err;
      err.code = "version_mismatch";
      err.message = "client speaks protocol 1.0, daemon speaks 2.0";
      err.retryable = false;
      err.fatal = true;
      d.Send(hello->identity, cvb::MakeMessage(err, hello->message->id));
    }
    EXPECT(PumpUntil(client, [&] { return client.State() == cvb::ConnectionState::Failed; }, 2000));
    EXPECT(!Expect(d, client, OfType(cvb::MessageType::Hello), 1000).has_value());
    bool reported = false;
    for (auto& e : seen.connection) reported |= e.error_code == "version_mismatch";
    EXPECT(reported);
    // Requests fail fast instead of hanging.
    cvb::msg::SessionOpen cfg;
    cfg.character_id = "c";
    auto npc = client.OpenNpc(cfg);
    auto r = client.SendText(npc.npc, "hello?");
    EXPECT(r.wait_for(std::chrono::seconds(2)) == std::future_status::ready && r.get().code == "not_connected");
  }
  // unauthorized: reported, then retried (the daemon may have restarted with a new token).
  {
    FakeDaemon d;
    cvb::ClientOptions opts;
    opts.endpoint = d.endpoint();
    opts.token = "wrong";
    cvb::Client client(opts);
    Seen seen;
    Attach(client, seen);
    client.Start();
    auto hello = Expect(d, client, OfType(cvb::MessageType::Hello), 5000);
    if (EXPECT(hello.has_value())) {
      cvb::msg::Error err;
      err.code = "unauthorized";
      err.message = "token does not match the connection file";
      err.retryable = false;
      err.fatal = true;
      d.Send(hello->identity, cvb::MakeMessage(err, hello->message->id));
    }
    EXPECT(Expect(d, client, OfType(cvb::MessageType::Hello), 3000).has_value());
    bool reported = false;
    for (auto& e : seen.connection) reported |= e.error_code == "unauthorized";
    EXPECT(reported);
  }
}

void DecoderFuzz(const std::string& dir) {
  // Random corruption of every golden vector: the decoder either decodes or returns a schema code.
  std::vector<std::vector<Bytes>> seeds;
  for (size_t i = 0; i + 1 < cvb::kMessageTypeCount; ++i) {
    std::string data;
    const std::string base = dir + "/" + cvb::kMessageInfo[i].name;
    if (!cvbtest::ReadFile(base + ".msgpack", &data)) continue;
    std::vector<Bytes> parts{cvbtest::ToBytes(data)};
    for (int f = 1; cvbtest::ReadFile(base + "." + std::to_string(f) + ".bin", &data); ++f)
      parts.push_back(cvbtest::ToBytes(data));
    seeds.push_back(std::move(parts));
  }
  EXPECT(seeds.size() + 1 == cvb::kMessageTypeCount);
  std::mt19937 rng(1234);
  std::set<std::string> codes;
  int decoded = 0, bad_codes = 0;
  for (int iter = 0; iter < 30000 && !seeds.empty(); ++iter) {
    std::vector<Bytes> parts = seeds[rng() % seeds.size()];
    Bytes& h = parts[0];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !h.empty(); ++e) {
      switch (rng() % 4) {
        case 0: h[rng() % h.size()] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: h[rng() % h.size()] = static_cast<uint8_t>(rng()); break;
        case 2: h.resize(rng() % h.size()); break;
        default: h.insert(h.begin() + static_cast<long>(rng() % h.size()), static_cast<uint8_t>(rng())); break;
      }
    }
    if (rng() % 8 == 0) parts.push_back(Bytes(rng() % 16, 0));
    auto r = cvb::Decode(parts);
    if (r.ok()) {
      ++decoded;
      auto e = cvb::Encode(*r.message);  // whatever decodes must re-encode
      if (!e.ok()) ++bad_codes;
    } else {
      codes.insert(r.error.code);
      if (!cvb::FindErrorCode(r.error.code)) ++bad_codes;
    }
  }
  EXPECT_MSG(bad_codes == 0, std::to_string(bad_codes) + " results outside the schema");
  EXPECT(decoded > 0);
  EXPECT(codes.count("bad_message") == 1 && codes.count("invalid_field") == 1);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string vectors = argc > 1 ? argv[1] : "protocol/vectors";
  DecoderFuzz(vectors);
  Conversation();
  Refusals();
  return cvbtest::Finish("robustness_test");
}

// Client: the network thread (ZeroMQ DEALER, handshake, heartbeats, reconnects, sessions) and the
// game-thread dispatch queue. All session state is owned by the network thread; other threads
// talk to it through the command queue and read snapshots.
#include "convai_bridge/client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "convai_bridge/codec.h"
#include "zmq_include.h"

namespace cvb {

const char* ToString(ConnectionState state) {
  switch (state) {
    case ConnectionState::Stopped: return "stopped";
    case ConnectionState::Connecting: return "connecting";
    case ConnectionState::Handshaking: return "handshaking";
    case ConnectionState::Ready: return "ready";
    case ConnectionState::Failed: return "failed";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

constexpr int kTickMs = 20;               // poll timeout when idle
constexpr int kNoEndpointRetryMs = 500;   // connection file missing: look again this often
constexpr size_t kMaxRecvPerTick = 512;   // bound one loop iteration's reads
constexpr size_t kAudioHeaderReserve = 256;
constexpr const char* kSessionGone = "convai_not_found";  // resuming a conversation Convai forgot

struct Handlers {
  std::function<void(NpcId, const Message&)> message;
  std::function<void(const ConnectionEvent&)> connection;
  std::function<void(const std::string&)> problem;
};
using Task = std::function<void(const Handlers&)>;

Reply LocalFailure(const std::string& code, const std::string& message, bool retryable) {
  Reply r;
  r.ok = false;
  r.code = code;
  r.message = message;
  r.retryable = retryable;
  return r;
}

bool SameMajor(const std::string& protocol) {
  const auto dot = protocol.find('.');
  return protocol.substr(0, dot) == std::to_string(kProtocolMajor);
}

}  // namespace

struct Client::Impl {
  // ---- shared, immutable after construction ----
  ClientOptions options;
  zmq::context_t ctx{1};
  std::string wake_address;

  // ---- command queue (any thread -> network thread) ----
  enum class CmdKind { Open, Close, Request, Audio };
  struct Command {
    CmdKind kind = CmdKind::Request;
    NpcId npc = 0;
    std::optional<Body> body;
    std::shared_ptr<NpcMedia> media;
    std::vector<int16_t> pcm;
    int sample_rate = 0;
    int channels = 0;
    std::shared_ptr<std::promise<Reply>> promise;
    ReplyCallback callback;
  };
  std::mutex cmd_mu;
  std::deque<Command> commands;
  std::unique_ptr<zmq::socket_t> wake_push;  // used under cmd_mu
  std::unique_ptr<zmq::socket_t> wake_pull;  // network thread

  // ---- game-thread queue ----
  std::mutex task_mu;
  std::deque<Task> tasks;
  std::mutex handler_mu;
  Handlers handlers;

  // ---- snapshots (network thread writes, anyone reads) ----
  mutable std::mutex status_mu;
  std::map<NpcId, NpcStatus> statuses;
  std::map<NpcId, std::shared_ptr<NpcMedia>> medias;
  std::string instance_snapshot;
  std::optional<Limits> limits_snapshot;
  std::atomic<ConnectionState> state{ConnectionState::Stopped};

  struct AtomicStats {
    std::atomic<uint64_t> messages_in{0}, messages_out{0}, decode_errors{0}, unknown_messages{0},
        handler_exceptions{0}, reconnects{0}, pings_answered{0}, audio_in_sent{0}, audio_in_dropped{0},
        audio_out_received{0}, audio_out_dropped{0}, events_dropped{0};
  } stats;

  std::atomic<NpcId> next_npc{1};
  std::atomic<bool> stop{false};
  std::thread thread;
  bool started = false;

  // ---- network thread only ----
  struct Session {
    NpcId id = 0;
    msg::SessionOpen config;
    std::shared_ptr<NpcMedia> media;
    std::string sid;
    std::string character_session_id;
    std::string backend;
    std::vector<std::string> capabilities;
    bool want_open = true;
    bool opening = false;
    bool ready = false;
    bool resuming = false;         // the current open asked to resume character_session_id
    bool resume_rejected = false;  // ...and the character service no longer knows it
    uint64_t opens = 0;
    int64_t audio_seq = 0;
    TurnTracker turns;
    std::shared_ptr<std::promise<Reply>> open_promise;  // the user's first open, until it is sent
    ReplyCallback open_callback;
  };
  struct Pending {
    NpcId npc = 0;
    MessageType type = MessageType::Unknown;
    std::shared_ptr<std::promise<Reply>> promise;
    ReplyCallback callback;
    Clock::time_point deadline;
  };

  std::unique_ptr<zmq::socket_t> dealer;
  std::unique_ptr<zmq::socket_t> monitor;
  uint64_t socket_generation = 0;
  std::string token;
  std::string endpoint;
  std::string instance_id;
  std::optional<Limits> limits;
  bool hello_sent = false;
  int64_t hello_id = -1;
  Clock::time_point handshake_deadline;
  Clock::time_point next_attempt;
  Clock::time_point last_recv;
  Clock::time_point last_send;
  int backoff_ms = 0;
  uint32_t next_request_id = 1;
  std::map<NpcId, Session> sessions;
  std::unordered_map<std::string, NpcId> sid_to_npc;
  std::unordered_map<int64_t, Pending> pending;
  std::vector<int16_t> scratch;

  explicit Impl(ClientOptions opts) : options(std::move(opts)) {
    if (options.connection_file.empty() && (options.endpoint.empty() || options.token.empty()))
      options.connection_file = DefaultConnectionFilePath();
    static std::atomic<uint64_t> instances{0};
    wake_address = "inproc://cvb-wake-" + std::to_string(instances.fetch_add(1));
    wake_pull = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pull);
    wake_pull->set(zmq::sockopt::linger, 0);
    wake_pull->bind(wake_address);
    wake_push = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::push);
    wake_push->set(zmq::sockopt::linger, 0);
    wake_push->set(zmq::sockopt::sndhwm, 16);
    wake_push->connect(wake_address);
  }

  ~Impl() {
    wake_push.reset();
    wake_pull.reset();
    ctx.close();
  }

  // ======================================================================================
  // Any thread
  // ======================================================================================

  void PushCommand(Command cmd) {
    std::lock_guard<std::mutex> lock(cmd_mu);
    const bool was_empty = commands.empty();
    commands.push_back(std::move(cmd));
    if (was_empty && wake_push) {
      try {
        wake_push->send(zmq::message_t(), zmq::send_flags::dontwait);
      } catch (const zmq::error_t&) {
        // The network thread polls at least every kTickMs anyway.
      }
    }
  }

  void Wake() {
    std::lock_guard<std::mutex> lock(cmd_mu);
    try {
      if (wake_push) wake_push->send(zmq::message_t(), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
    }
  }

  void PushTask(Task task) {
    std::lock_guard<std::mutex> lock(task_mu);
    tasks.push_back(std::move(task));
    while (tasks.size() > options.max_queued_events) {
      tasks.pop_front();
      ++stats.events_dropped;
    }
  }

  // ======================================================================================
  // Network thread: helpers
  // ======================================================================================

  void SetState(ConnectionState s, const std::string& detail, const std::string& code = {}, bool changed = false) {
    state.store(s);
    ConnectionEvent ev;
    ev.state = s;
    ev.instance_id = instance_id;
    ev.instance_changed = changed;
    ev.error_code = code;
    ev.detail = detail;
    PushTask([ev](const Handlers& h) {
      if (h.connection) h.connection(ev);
    });
  }

  void Problem(const std::string& what) {
    PushTask([what](const Handlers& h) {
      if (h.problem) h.problem(what);
    });
  }

  void Route(NpcId npc, Message&& m) {
    auto shared = std::make_shared<Message>(std::move(m));
    PushTask([npc, shared](const Handlers& h) {
      if (h.message) h.message(npc, *shared);
    });
  }

  void Resolve(const std::shared_ptr<std::promise<Reply>>& promise, const ReplyCallback& callback, const Reply& reply) {
    if (promise) {
      try {
        promise->set_value(reply);
      } catch (const std::future_error&) {
        // already satisfied
      }
    }
    if (callback) {
      PushTask([callback, reply](const Handlers&) { callback(reply); });
    }
  }

  void UpdateStatus(const Session& s) {
    NpcStatus st;
    st.id = s.id;
    st.ready = s.ready;
    st.sid = s.sid;
    st.character_id = s.config.character_id;
    st.character_session_id = s.character_session_id;
    st.backend = s.backend;
    st.capabilities = s.capabilities;
    st.latest_turn = s.turns.latest();
    st.opens = s.opens;
    std::lock_guard<std::mutex> lock(status_mu);
    statuses[s.id] = std::move(st);
  }

  void ForgetSession(NpcId npc) {
    sessions.erase(npc);
    std::lock_guard<std::mutex> lock(status_mu);
    statuses.erase(npc);
    medias.erase(npc);
  }

  Session* FindSession(NpcId npc) {
    auto it = sessions.find(npc);
    return it == sessions.end() ? nullptr : &it->second;
  }

  NpcId NpcForSid(const std::optional<std::string>& sid) const {
    if (!sid) return 0;
    auto it = sid_to_npc.find(*sid);
    return it == sid_to_npc.end() ? 0 : it->second;
  }

  uint32_t NextRequestId() {
    for (;;) {
      const uint32_t id = next_request_id++;
      if (next_request_id == 0) next_request_id = 1;
      if (id != 0 && pending.find(id) == pending.end() && static_cast<int64_t>(id) != hello_id) return id;
    }
  }

  int SilenceTimeoutMs() const {
    if (options.silence_timeout_ms > 0) return options.silence_timeout_ms;
    if (limits && limits->client_timeout_ms > 0) return static_cast<int>(limits->client_timeout_ms);
    return options.client_timeout_ms;
  }

  int HeartbeatMs() const {
    if (limits && limits->heartbeat_ms > 0) return static_cast<int>(limits->heartbeat_ms);
    return options.heartbeat_ms;
  }

  // ---- socket lifecycle ----

  void CloseSocket() {
    if (dealer && monitor) {
      zmq_socket_monitor(dealer->handle(), nullptr, 0);
    }
    monitor.reset();
    dealer.reset();
    hello_sent = false;
    hello_id = -1;
  }

  // Reads the connection file and connects a fresh DEALER. False when there is no endpoint yet.
  bool OpenSocket(std::string* why) {
    ConnectionInfo info;
    if (!options.connection_file.empty()) {
      if (!ReadConnectionFile(options.connection_file, &info, why) && options.endpoint.empty()) return false;
    }
    if (!options.endpoint.empty()) info.endpoint = options.endpoint;
    if (!options.token.empty()) info.token = options.token;
    if (info.endpoint.empty()) {
      *why = "no endpoint configured";
      return false;
    }
    endpoint = info.endpoint;
    token = info.token;
    dealer = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    dealer->set(zmq::sockopt::linger, 0);
    dealer->set(zmq::sockopt::immediate, 1);  // never queue for a peer that is not connected
    dealer->set(zmq::sockopt::sndhwm, 10000);
    dealer->set(zmq::sockopt::rcvhwm, 10000);
    dealer->set(zmq::sockopt::reconnect_ivl, 100);
    dealer->set(zmq::sockopt::reconnect_ivl_max, 1000);
    dealer->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_bytes));
    const std::string monitor_address =
        wake_address + "-monitor-" + std::to_string(++socket_generation);
    if (zmq_socket_monitor(dealer->handle(), monitor_address.c_str(), ZMQ_EVENT_DISCONNECTED) == 0) {
      monitor = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
      monitor->set(zmq::sockopt::linger, 0);
      monitor->connect(monitor_address);
    }
    try {
      dealer->connect(endpoint);
    } catch (const zmq::error_t& e) {
      *why = "cannot connect to " + endpoint + ": " + e.what();
      CloseSocket();
      return false;
    }
    hello_sent = false;
    return true;
  }

  bool SendParts(const std::vector<Bytes>& parts) {
    if (!dealer) return false;
    try {
      for (size_t i = 0; i < parts.size(); ++i) {
        const auto flags = (i + 1 < parts.size()) ? (zmq::send_flags::dontwait | zmq::send_flags::sndmore)
                                                  : zmq::send_flags::dontwait;
        if (!dealer->send(zmq::buffer(parts[i].data(), parts[i].size()), flags)) return false;  // EAGAIN
      }
    } catch (const zmq::error_t& e) {
      Problem(std::string("send failed: ") + e.what());
      return false;
    }
    last_send = Clock::now();
    ++stats.messages_out;
    return true;
  }

  // Encodes and sends; an invalid message is reported, never sent.
  bool SendEncoded(const Message& m, std::string* error = nullptr) {
    EncodeResult encoded = Encode(m);
    if (!encoded.ok()) {
      if (error) *error = encoded.error->code + ": " + encoded.error->message;
      return false;
    }
    if (!SendParts(encoded.parts)) {
      if (error) *error = "not_connected";
      return false;
    }
    return true;
  }

  void SendRequest(NpcId npc, Message m, std::shared_ptr<std::promise<Reply>> promise, ReplyCallback callback,
                   int timeout_ms = 0) {
    const uint32_t id = NextRequestId();
    m.id = id;
    std::string error;
    if (!SendEncoded(m, &error)) {
      const bool invalid = error != "not_connected";
      Resolve(promise, callback,
              LocalFailure(invalid ? "invalid_request" : "not_connected",
                           invalid ? error : "the daemon connection is not ready", !invalid));
      return;
    }
    Pending p;
    p.npc = npc;
    p.type = m.type();
    p.promise = std::move(promise);
    p.callback = std::move(callback);
    p.deadline = Clock::now() + Ms(timeout_ms > 0 ? timeout_ms : options.request_timeout_ms);
    pending.emplace(id, std::move(p));
  }

  void TrySendHello() {
    msg::Hello hello;
    hello.protocol = kProtocolVersion;
    hello.token = token;
    hello.client = options.client_name;
    hello.client_version = options.client_version;
    hello.engine = options.engine;
    Message m = MakeMessage(hello);
    const uint32_t id = NextRequestId();
    m.id = id;
    if (!SendEncoded(m)) return;  // no connection yet (ZMQ_IMMEDIATE): try again next tick
    hello_id = id;
    hello_sent = true;
    handshake_deadline = Clock::now() + Ms(options.handshake_timeout_ms);
    last_recv = Clock::now();
    SetState(ConnectionState::Handshaking, "hello sent to " + endpoint);
  }

  void FailAllPending(const std::string& code, const std::string& why) {
    auto all = std::move(pending);
    pending.clear();
    for (auto& [id, p] : all) {
      if (p.type == MessageType::SessionOpen) {
        // The NPC will be (re)opened on the next connection: keep the user's open waiting for it.
        Session* s = FindSession(p.npc);
        if (s && s->want_open && (p.promise || p.callback)) {
          s->open_promise = std::move(p.promise);
          s->open_callback = std::move(p.callback);
          continue;
        }
      }
      Resolve(p.promise, p.callback, LocalFailure(code, why, true));
    }
  }

  void Reconnect(const std::string& why, bool increase_backoff) {
    CloseSocket();
    FailAllPending("connection_lost", why);
    for (auto& [npc, s] : sessions) {
      s.sid.clear();
      s.ready = false;
      s.opening = false;
      UpdateStatus(s);
    }
    sid_to_npc.clear();
    ++stats.reconnects;
    if (increase_backoff) {
      backoff_ms = std::min(options.reconnect_backoff_max_ms, std::max(100, backoff_ms * 2));
    } else {
      backoff_ms = 0;
    }
    next_attempt = Clock::now() + Ms(backoff_ms);
    SetState(ConnectionState::Connecting, why);
  }

  void SendOpen(Session& s) {
    msg::SessionOpen cfg = s.config;
    if (!s.character_session_id.empty()) cfg.character_session_id = s.character_session_id;
    s.resuming = !s.character_session_id.empty();
    s.resume_rejected = false;
    s.opening = true;
    auto promise = std::move(s.open_promise);
    auto callback = std::move(s.open_callback);
    s.open_promise.reset();
    s.open_callback = nullptr;
    SendRequest(s.id, MakeMessage(std::move(cfg)), std::move(promise), std::move(callback),
                std::max(options.request_timeout_ms, 30000));
  }

  // ======================================================================================
  // Network thread: commands
  // ======================================================================================

  void HandleCommand(Command& c) {
    switch (c.kind) {
      case CmdKind::Open: {
        Session s;
        s.id = c.npc;
        s.config = std::get<msg::SessionOpen>(std::move(*c.body));
        s.media = std::move(c.media);
        s.open_promise = std::move(c.promise);
        s.open_callback = std::move(c.callback);
        auto [it, inserted] = sessions.emplace(s.id, std::move(s));
        UpdateStatus(it->second);
        if (state.load() == ConnectionState::Ready) SendOpen(it->second);
        return;
      }
      case CmdKind::Close: {
        Session* s = FindSession(c.npc);
        if (!s) return Resolve(c.promise, c.callback, LocalFailure("unknown_npc", "no such NPC", false));
        s->want_open = false;
        if (!s->sid.empty() && state.load() == ConnectionState::Ready) {
          SendRequest(c.npc, MakeMessage(msg::SessionClose{}, std::nullopt, s->sid), c.promise, c.callback);
          ForgetSession(c.npc);  // sid_to_npc keeps routing its last events until session_closed
          return;
        }
        if (!s->opening) ForgetSession(c.npc);  // else: closed as soon as the open's ack arrives
        Reply ok;
        ok.ok = true;
        return Resolve(c.promise, c.callback, ok);
      }
      case CmdKind::Request: {
        Session* s = FindSession(c.npc);
        if (!s) return Resolve(c.promise, c.callback, LocalFailure("unknown_npc", "no such NPC", false));
        if (std::holds_alternative<msg::Interrupt>(*c.body)) {
          // Local effect first: silence now, whatever the daemon answers.
          const int64_t through = s->turns.OnLocalInterrupt();
          if (s->media) s->media->Flush(through);
        }
        if (state.load() != ConnectionState::Ready)
          return Resolve(c.promise, c.callback,
                         LocalFailure("not_connected", "the daemon connection is not ready", true));
        if (s->sid.empty())
          return Resolve(c.promise, c.callback, LocalFailure("session_not_ready", "the NPC session is not open yet", true));
        Message m;
        m.body = std::move(*c.body);
        m.sid = s->sid;
        SendRequest(c.npc, std::move(m), c.promise, c.callback);
        return;
      }
      case CmdKind::Audio: {
        Session* s = FindSession(c.npc);
        if (!s || s->sid.empty() || state.load() != ConnectionState::Ready) {
          ++stats.audio_in_dropped;
          return;
        }
        const size_t channels = static_cast<size_t>(std::max(c.channels, 1));
        size_t max_frames = c.pcm.size() / channels;
        if (limits && limits->max_message_bytes > static_cast<int64_t>(kAudioHeaderReserve + 4 * channels))
          max_frames = (static_cast<size_t>(limits->max_message_bytes) - kAudioHeaderReserve) / (2 * channels);
        const size_t total_frames = c.pcm.size() / channels;
        for (size_t first = 0; first < total_frames; first += max_frames) {
          const size_t n = std::min(max_frames, total_frames - first);
          msg::AudioIn in;
          in.seq = s->audio_seq++;
          in.sample_rate = c.sample_rate;
          in.channels = static_cast<int64_t>(channels);
          in.samples = static_cast<int64_t>(n);
          Message m = MakeMessage(in, std::nullopt, s->sid);
          Bytes frame(n * channels * 2);
          std::memcpy(frame.data(), c.pcm.data() + first * channels, frame.size());
          m.frames.push_back(std::move(frame));
          if (SendEncoded(m)) {
            ++stats.audio_in_sent;
          } else {
            ++stats.audio_in_dropped;
          }
        }
        return;
      }
    }
  }

  void DrainCommands() {
    std::deque<Command> batch;
    {
      std::lock_guard<std::mutex> lock(cmd_mu);
      batch.swap(commands);
    }
    for (auto& c : batch) {
      try {
        HandleCommand(c);
      } catch (const std::exception& e) {
        Problem(std::string("command failed: ") + e.what());
        Resolve(c.promise, c.callback, LocalFailure("invalid_request", e.what(), false));
      }
    }
  }

  // ======================================================================================
  // Network thread: incoming messages
  // ======================================================================================

  static Reply ReplyFromAck(const Message& m) {
    Reply r;
    r.ok = true;
    r.sid = m.sid;
    if (const auto* ack = m.As<msg::Ack>()) {
      r.turn = ack->turn;
      r.result = ack->result;
    }
    return r;
  }

  static Reply ReplyFromError(const msg::Error& e) {
    Reply r;
    r.ok = false;
    r.code = e.code;
    r.message = e.message;
    r.retryable = e.retryable;
    r.fatal = e.fatal;
    return r;
  }

  void OnWelcome(const Message& m, const msg::Welcome& w) {
    if (!SameMajor(w.protocol)) {
      CloseSocket();
      SetState(ConnectionState::Failed, "daemon speaks protocol " + w.protocol + ", this client " + kProtocolVersion,
               "version_mismatch");
      return;
    }
    const bool changed = !instance_id.empty() && instance_id != w.instance_id;
    instance_id = w.instance_id;
    limits = w.limits;
    backoff_ms = 0;
    hello_id = -1;
    {
      std::lock_guard<std::mutex> lock(status_mu);
      instance_snapshot = instance_id;
      limits_snapshot = limits;
    }
    SetState(ConnectionState::Ready, "welcome from daemon " + w.daemon_version, {}, changed);
    (void)m;
    for (auto& [npc, s] : sessions)
      if (s.want_open && s.sid.empty() && !s.opening) SendOpen(s);
  }

  void OnAck(Message& m) {
    auto it = pending.find(*m.id);
    if (it == pending.end()) return;  // late ack of a request that already timed out
    Pending p = std::move(it->second);
    pending.erase(it);
    Reply reply = ReplyFromAck(m);
    Session* s = FindSession(p.npc);
    if (p.type == MessageType::SessionOpen) {
      if (s && m.sid) {
        s->opening = false;
        s->sid = *m.sid;
        s->ready = false;
        s->audio_seq = 0;
        s->turns.Reset();          // a new daemon session numbers its turns from the start
        if (s->media) s->media->Reset();
        ++s->opens;
        sid_to_npc[*m.sid] = p.npc;
        UpdateStatus(*s);
        if (!s->want_open) {       // closed while opening
          SendClose(*m.sid);
          ForgetSession(p.npc);
        }
      } else if (!s && m.sid) {
        SendClose(*m.sid);
      }
    } else if (s && reply.turn) {
      s->turns.Announce(*reply.turn);
      UpdateStatus(*s);
    }
    Resolve(p.promise, p.callback, reply);
  }

  void SendClose(const std::string& sid) {
    Message close = MakeMessage(msg::SessionClose{}, static_cast<int64_t>(NextRequestId()), sid);
    SendEncoded(close);
  }

  void OnError(Message& m, const msg::Error& e) {
    if (m.id && *m.id == hello_id && state.load() == ConnectionState::Handshaking) {
      CloseSocket();
      if (e.code == "version_mismatch") {
        SetState(ConnectionState::Failed, e.message, e.code);
        return;
      }
      // unauthorized: the daemon may have restarted with a new token; re-read the file and retry.
      backoff_ms = std::min(options.reconnect_backoff_max_ms, std::max(250, backoff_ms * 2));
      next_attempt = Clock::now() + Ms(backoff_ms);
      SetState(ConnectionState::Connecting, e.message, e.code);
      return;
    }
    if (e.code == "not_ready") {
      // The daemon does not know this connection: it restarted behind our back.
      Reconnect("daemon answered not_ready (restarted?)", false);
      return;
    }
    if (m.id) {
      auto it = pending.find(*m.id);
      if (it != pending.end()) {
        Pending p = std::move(it->second);
        pending.erase(it);
        Session* s = FindSession(p.npc);
        const bool user_waiting = p.promise || p.callback;
        bool retry_fresh = false;
        if (p.type == MessageType::SessionOpen && s) {
          s->opening = false;
          if (s->resuming && e.code == kSessionGone && s->want_open) {
            retry_fresh = true;  // the old conversation expired: start a new one
          } else if (!e.retryable) {
            s->want_open = false;
          }
        }
        Resolve(p.promise, p.callback, ReplyFromError(e));
        if (retry_fresh) StartFresh(*s);
        if (!user_waiting) Route(p.npc, std::move(m));  // an automatic reopen failed: tell the game
        return;
      }
    }
    if (Session* s = FindSession(NpcForSid(m.sid)); s && s->resuming && e.code == kSessionGone)
      s->resume_rejected = true;  // session_closed follows; the session is reopened fresh then
    Route(NpcForSid(m.sid), std::move(m));
  }

  // Resuming failed because the character service forgot the conversation (e.g. it expired, or an
  // emulator restarted with the daemon): open a new conversation instead of giving up.
  void StartFresh(Session& s) {
    s.character_session_id.clear();
    UpdateStatus(s);
    if (state.load() == ConnectionState::Ready) SendOpen(s);
  }

  void HandleMessage(Message& m) {
    const NpcId npc = NpcForSid(m.sid);
    Session* s = FindSession(npc);
    switch (m.type()) {
      case MessageType::Welcome:
        if (m.id && *m.id == hello_id && state.load() == ConnectionState::Handshaking)
          OnWelcome(m, *m.As<msg::Welcome>());
        return;
      case MessageType::Ping: {
        Message pong = MakeMessage(msg::Pong{}, m.id);
        if (SendEncoded(pong)) ++stats.pings_answered;
        return;
      }
      case MessageType::Pong:
        return;
      case MessageType::Ack:
        return OnAck(m);
      case MessageType::Error: {
        const msg::Error e = *m.As<msg::Error>();
        return OnError(m, e);
      }
      case MessageType::SessionOpened: {
        const auto& o = *m.As<msg::SessionOpened>();
        if (s) {
          s->ready = true;
          if (o.character_session_id && !o.character_session_id->empty())
            s->character_session_id = *o.character_session_id;
          s->backend = o.backend;
          s->capabilities = o.capabilities;
          UpdateStatus(*s);
        }
        break;
      }
      case MessageType::SessionState: {
        const auto& st = *m.As<msg::SessionState>();
        if (s && st.character_session_id && !st.character_session_id->empty()) {
          s->character_session_id = *st.character_session_id;
          UpdateStatus(*s);
        }
        break;
      }
      case MessageType::SessionClosed: {
        const auto& c = *m.As<msg::SessionClosed>();
        if (m.sid) sid_to_npc.erase(*m.sid);
        if (s && m.sid && s->sid == *m.sid) {
          s->sid.clear();
          s->ready = false;
          s->opening = false;
          if (s->resume_rejected && s->want_open) {
            StartFresh(*s);
          } else if (c.reason == "client_gone" && s->want_open) {
            // The daemon thought we were gone (e.g. a long debugger pause): open it again.
            if (state.load() == ConnectionState::Ready) SendOpen(*s);
          } else if (c.reason != "shutdown") {
            s->want_open = false;  // a shutdown is followed by a reconnect that reopens it
          }
          UpdateStatus(*s);
        }
        break;
      }
      case MessageType::TurnStarted: {
        const auto& t = *m.As<msg::TurnStarted>();
        if (s) {
          if (auto flushed = s->turns.OnTurnStarted(t.turn); flushed && s->media) s->media->Flush(*flushed);
          UpdateStatus(*s);
        }
        break;
      }
      case MessageType::TurnCompleted: {
        const auto& t = *m.As<msg::TurnCompleted>();
        if (s && s->turns.OnTurnCompleted(t.turn, t.interrupted) && s->media) s->media->Flush(t.turn);
        break;
      }
      case MessageType::AudioOut: {
        const auto& a = *m.As<msg::AudioOut>();
        ++stats.audio_out_received;
        if (s && s->media && s->turns.Accept(a.turn) && !m.frames.empty()) {
          const Bytes& pcm = m.frames[0];
          scratch.resize(pcm.size() / 2);
          std::memcpy(scratch.data(), pcm.data(), scratch.size() * 2);  // s16le; all supported hosts are LE
          if (!s->media->PushAudio(a.turn, a.offset, scratch.data(), static_cast<size_t>(a.samples),
                                   static_cast<int>(a.channels)))
            ++stats.audio_out_dropped;
        } else {
          ++stats.audio_out_dropped;
        }
        if (!options.forward_audio_frames) m.frames.clear();
        break;
      }
      case MessageType::Visemes: {
        const auto& v = *m.As<msg::Visemes>();
        if (s && s->media && s->turns.Accept(v.turn))
          s->media->AddVisemes(v.turn, v.offset, std::vector<float>(v.weights.begin(), v.weights.end()));
        break;
      }
      case MessageType::Blendshapes: {
        const auto& b = *m.As<msg::Blendshapes>();
        if (s && s->media && s->turns.Accept(b.turn) && !m.frames.empty()) {
          std::vector<float> rows(m.frames[0].size() / 4);
          std::memcpy(rows.data(), m.frames[0].data(), rows.size() * 4);
          s->media->AddBlendshapes(b.turn, b.offset, b.fps, b.format, b.width, rows.data(), b.count);
        }
        break;
      }
      case MessageType::LipsyncCancel: {
        const auto& c = *m.As<msg::LipsyncCancel>();
        if (s && s->media) s->media->CancelLipSync(c.turn, c.valid_through);
        break;
      }
      default:
        break;
    }
    Route(npc, std::move(m));
  }

  void HandleIncoming(std::vector<zmq::message_t>& parts) {
    ++stats.messages_in;
    last_recv = Clock::now();
    std::vector<ByteView> views;
    views.reserve(parts.size());
    for (auto& p : parts) views.push_back(ByteView{static_cast<const uint8_t*>(p.data()), p.size()});
    DecodeResult r = Decode(views, options.max_message_bytes);
    if (!r.ok()) {
      if (r.error.code == "unknown_type" && r.raw_header.IsMap()) {
        // A newer daemon's event: surface it generically, never fail.
        ++stats.unknown_messages;
        Message m;
        m.id = r.error.id;
        m.sid = r.error.sid;
        if (const Value* ts = r.raw_header.Find("ts"); ts && ts->kind() == Value::Kind::Int) m.ts = ts->AsInt();
        msg::Unknown u;
        if (const Value* t = r.raw_header.Find("type")) u.type = t->AsStr();
        u.header = std::move(r.raw_header);
        m.body = std::move(u);
        for (size_t i = 1; i < parts.size(); ++i) m.frames.emplace_back(views[i].data, views[i].data + views[i].size);
        Route(NpcForSid(m.sid), std::move(m));
        return;
      }
      ++stats.decode_errors;
      Problem("undecodable message from the daemon: " + r.error.code + ": " + r.error.message);
      if (r.error.id) {
        // A reply we cannot read still ends its request.
        auto it = pending.find(*r.error.id);
        if (it != pending.end()) {
          Pending p = std::move(it->second);
          pending.erase(it);
          Resolve(p.promise, p.callback, LocalFailure(r.error.code, r.error.message, false));
        }
      }
      return;
    }
    HandleMessage(*r.message);
  }

  // ======================================================================================
  // Network thread: loop
  // ======================================================================================

  void CheckTimers() {
    const auto now = Clock::now();
    const ConnectionState st = state.load();
    if (st == ConnectionState::Failed) return;
    if (!dealer) {
      if (now < next_attempt) return;
      std::string why;
      if (!OpenSocket(&why)) {
        next_attempt = now + Ms(kNoEndpointRetryMs);
        if (st != ConnectionState::Connecting) SetState(ConnectionState::Connecting, why);
        return;
      }
      if (st != ConnectionState::Connecting) SetState(ConnectionState::Connecting, "connecting to " + endpoint);
    }
    if (!hello_sent) {
      TrySendHello();
      return;
    }
    if (st == ConnectionState::Handshaking && now > handshake_deadline) {
      Reconnect("no welcome within " + std::to_string(options.handshake_timeout_ms) + " ms", true);
      return;
    }
    if (st == ConnectionState::Ready) {
      if (now - last_recv > Ms(SilenceTimeoutMs())) {
        Reconnect("daemon silent for " + std::to_string(SilenceTimeoutMs()) + " ms", false);
        return;
      }
      if (now - last_send >= Ms(HeartbeatMs())) {
        Message ping = MakeMessage(msg::Ping{}, static_cast<int64_t>(NextRequestId()));
        SendEncoded(ping);
      }
    }
    for (auto it = pending.begin(); it != pending.end();) {
      if (now > it->second.deadline) {
        Pending p = std::move(it->second);
        it = pending.erase(it);
        if (p.type == MessageType::SessionOpen) {
          if (Session* s = FindSession(p.npc)) s->opening = false;
        }
        Resolve(p.promise, p.callback, LocalFailure("timeout", "no answer from the daemon in time", true));
      } else {
        ++it;
      }
    }
  }

  void ReadMonitor() {
    while (monitor) {
      std::vector<zmq::message_t> event;
      std::optional<size_t> got;
      try {
        got = zmq::recv_multipart(*monitor, std::back_inserter(event), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t&) {
        return;
      }
      if (!got) return;
      if (event.empty() || event[0].size() < 2) continue;
      uint16_t id = 0;
      std::memcpy(&id, event[0].data(), sizeof id);
      if (id == ZMQ_EVENT_DISCONNECTED && state.load() != ConnectionState::Connecting) {
        Reconnect("daemon disconnected", false);
        return;
      }
    }
  }

  void ReadDealer() {
    for (size_t n = 0; n < kMaxRecvPerTick && dealer; ++n) {
      std::vector<zmq::message_t> parts;
      std::optional<size_t> got;
      try {
        got = zmq::recv_multipart(*dealer, std::back_inserter(parts), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        Problem(std::string("receive failed: ") + e.what());
        return;
      }
      if (!got) return;
      try {
        HandleIncoming(parts);
      } catch (const std::exception& e) {
        ++stats.decode_errors;
        Problem(std::string("failed to handle a daemon message: ") + e.what());
      }
    }
  }

  void Run() {
    next_attempt = Clock::now();
    SetState(ConnectionState::Connecting, "starting");
    while (!stop.load()) {
      std::vector<zmq::pollitem_t> items;
      items.push_back({wake_pull->handle(), 0, ZMQ_POLLIN, 0});
      if (dealer) items.push_back({dealer->handle(), 0, ZMQ_POLLIN, 0});
      if (monitor) items.push_back({monitor->handle(), 0, ZMQ_POLLIN, 0});
      try {
        zmq::poll(items.data(), items.size(), Ms(kTickMs));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) Problem(std::string("poll failed: ") + e.what());
      }
      if (items[0].revents & ZMQ_POLLIN) {
        zmq::message_t ignored;
        while (wake_pull->recv(ignored, zmq::recv_flags::dontwait)) {
        }
      }
      try {
        ReadDealer();
        ReadMonitor();
        DrainCommands();
        CheckTimers();
      } catch (const std::exception& e) {
        Problem(std::string("network thread error: ") + e.what());
      }
    }
    Shutdown();
  }

  void Shutdown() {
    DrainCommands();
    if (dealer && state.load() == ConnectionState::Ready) {
      for (auto& [npc, s] : sessions)
        if (!s.sid.empty()) SendClose(s.sid);
      dealer->set(zmq::sockopt::linger, 200);  // let the closes leave
    }
    CloseSocket();
    FailAllPending("stopped", "the client stopped");
    for (auto& [npc, s] : sessions) Resolve(s.open_promise, s.open_callback, LocalFailure("stopped", "the client stopped", false));
    sessions.clear();
    sid_to_npc.clear();
    {
      std::lock_guard<std::mutex> lock(status_mu);
      statuses.clear();
      medias.clear();  // audio threads keep their own references until they let go
    }
    SetState(ConnectionState::Stopped, "stopped");
  }
};

// ==========================================================================================
// Public API
// ==========================================================================================

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() { Stop(); }

void Client::Start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->stop.store(false);
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void Client::Stop() {
  if (!impl_->started) return;
  impl_->stop.store(true);
  impl_->Wake();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->started = false;
}

size_t Client::Poll(size_t max_items) {
  Handlers handlers;
  {
    std::lock_guard<std::mutex> lock(impl_->handler_mu);
    handlers = impl_->handlers;
  }
  size_t ran = 0;
  while (ran < max_items) {
    Task task;
    {
      std::lock_guard<std::mutex> lock(impl_->task_mu);
      if (impl_->tasks.empty()) break;
      task = std::move(impl_->tasks.front());
      impl_->tasks.pop_front();
    }
    ++ran;
    std::string failure;
    try {
      task(handlers);
    } catch (const std::exception& e) {
      failure = std::string("a handler threw: ") + e.what();
    } catch (...) {
      failure = "a handler threw a non-standard exception";
    }
    if (!failure.empty()) {
      ++impl_->stats.handler_exceptions;
      try {
        if (handlers.problem) handlers.problem(failure);
      } catch (...) {
        // The problem handler itself failed; nothing more to do.
      }
    }
  }
  return ran;
}

void Client::SetMessageHandler(std::function<void(NpcId, const Message&)> handler) {
  std::lock_guard<std::mutex> lock(impl_->handler_mu);
  impl_->handlers.message = std::move(handler);
}

void Client::SetConnectionHandler(std::function<void(const ConnectionEvent&)> handler) {
  std::lock_guard<std::mutex> lock(impl_->handler_mu);
  impl_->handlers.connection = std::move(handler);
}

void Client::SetProblemHandler(std::function<void(const std::string&)> handler) {
  std::lock_guard<std::mutex> lock(impl_->handler_mu);
  impl_->handlers.problem = std::move(handler);
}

Client::OpenResult Client::OpenNpc(msg::SessionOpen config, ReplyCallback on_reply) {
  if (!config.audio) config.audio = AudioFormat{48000, 1, 20};
  const NpcId npc = impl_->next_npc.fetch_add(1);
  auto media = std::make_shared<NpcMedia>(*config.audio, impl_->options.audio_buffer_ms);
  {
    std::lock_guard<std::mutex> lock(impl_->status_mu);
    impl_->medias[npc] = media;
    NpcStatus st;
    st.id = npc;
    st.character_id = config.character_id;
    impl_->statuses[npc] = st;
  }
  auto promise = std::make_shared<std::promise<Reply>>();
  OpenResult result;
  result.npc = npc;
  result.reply = promise->get_future();
  Impl::Command c;
  c.kind = Impl::CmdKind::Open;
  c.npc = npc;
  c.body = Body(std::move(config));
  c.media = std::move(media);
  c.promise = std::move(promise);
  c.callback = std::move(on_reply);
  impl_->PushCommand(std::move(c));
  return result;
}

std::future<Reply> Client::CloseNpc(NpcId npc, ReplyCallback on_reply) {
  auto promise = std::make_shared<std::promise<Reply>>();
  auto future = promise->get_future();
  Impl::Command c;
  c.kind = Impl::CmdKind::Close;
  c.npc = npc;
  c.promise = std::move(promise);
  c.callback = std::move(on_reply);
  impl_->PushCommand(std::move(c));
  return future;
}

std::future<Reply> Client::SendSessionRequest(NpcId npc, Body body, ReplyCallback on_reply) {
  auto promise = std::make_shared<std::promise<Reply>>();
  auto future = promise->get_future();
  Impl::Command c;
  c.kind = Impl::CmdKind::Request;
  c.npc = npc;
  c.body = std::move(body);
  c.promise = std::move(promise);
  c.callback = std::move(on_reply);
  impl_->PushCommand(std::move(c));
  return future;
}

std::future<Reply> Client::SendText(NpcId npc, std::string text, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::Text{std::move(text)}, std::move(on_reply));
}

std::future<Reply> Client::EndOfUtterance(NpcId npc, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::EndOfUtterance{}, std::move(on_reply));
}

std::future<Reply> Client::Trigger(NpcId npc, std::string name, std::optional<std::string> message,
                                   ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::Trigger{std::move(name), std::move(message)}, std::move(on_reply));
}

std::future<Reply> Client::UpdateContext(NpcId npc, msg::ContextUpdate update, ReplyCallback on_reply) {
  return SendSessionRequest(npc, std::move(update), std::move(on_reply));
}

std::future<Reply> Client::SetDynamicInfo(NpcId npc, DynamicInfo info, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::DynamicInfo{std::move(info)}, std::move(on_reply));
}

std::future<Reply> Client::UpdateScene(NpcId npc, std::vector<SceneObject> scene, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::SceneUpdate{std::move(scene)}, std::move(on_reply));
}

std::future<Reply> Client::SetTemplateKeys(NpcId npc, StringMap keys, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::TemplateKeys{std::move(keys)}, std::move(on_reply));
}

std::future<Reply> Client::Interrupt(NpcId npc, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::Interrupt{}, std::move(on_reply));
}

std::future<Reply> Client::SetTts(NpcId npc, bool enabled, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::TtsToggle{enabled}, std::move(on_reply));
}

std::future<Reply> Client::SetSttMuted(NpcId npc, bool muted, ReplyCallback on_reply) {
  return SendSessionRequest(npc, msg::SttToggle{muted}, std::move(on_reply));
}

bool Client::SendAudio(NpcId npc, const int16_t* interleaved, size_t frames, int sample_rate, int channels) {
  if (interleaved == nullptr || frames == 0 || channels < 1 || channels > 2 || sample_rate <= 0) return false;
  if (impl_->state.load() != ConnectionState::Ready) {
    ++impl_->stats.audio_in_dropped;
    return false;
  }
  Impl::Command c;
  c.kind = Impl::CmdKind::Audio;
  c.npc = npc;
  c.pcm.assign(interleaved, interleaved + frames * static_cast<size_t>(channels));
  c.sample_rate = sample_rate;
  c.channels = channels;
  impl_->PushCommand(std::move(c));
  return true;
}

std::shared_ptr<NpcMedia> Client::Media(NpcId npc) const {
  std::lock_guard<std::mutex> lock(impl_->status_mu);
  auto it = impl_->medias.find(npc);
  return it == impl_->medias.end() ? nullptr : it->second;
}

std::optional<NpcStatus> Client::Status(NpcId npc) const {
  std::lock_guard<std::mutex> lock(impl_->status_mu);
  auto it = impl_->statuses.find(npc);
  if (it == impl_->statuses.end()) return std::nullopt;
  return it->second;
}

ConnectionState Client::State() const { return impl_->state.load(); }

std::string Client::InstanceId() const {
  std::lock_guard<std::mutex> lock(impl_->status_mu);
  return impl_->instance_snapshot;
}

std::optional<Limits> Client::CurrentLimits() const {
  std::lock_guard<std::mutex> lock(impl_->status_mu);
  return impl_->limits_snapshot;
}

ClientStats Client::Stats() const {
  const auto& s = impl_->stats;
  ClientStats out;
  out.messages_in = s.messages_in;
  out.messages_out = s.messages_out;
  out.decode_errors = s.decode_errors;
  out.unknown_messages = s.unknown_messages;
  out.handler_exceptions = s.handler_exceptions;
  out.reconnects = s.reconnects;
  out.pings_answered = s.pings_answered;
  out.audio_in_sent = s.audio_in_sent;
  out.audio_in_dropped = s.audio_in_dropped;
  out.audio_out_received = s.audio_out_received;
  out.audio_out_dropped = s.audio_out_dropped;
  out.events_dropped = s.events_dropped;
  return out;
}

}  // namespace cvb

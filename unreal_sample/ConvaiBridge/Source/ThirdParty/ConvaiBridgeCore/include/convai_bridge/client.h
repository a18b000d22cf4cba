// The engine-facing client of the convai-bridge daemon.
//
// Threads:
//   * a network thread (owned here) does all ZeroMQ I/O, heartbeats, reconnects and session
//     bookkeeping, and writes bot audio / lip-sync straight into each NPC's NpcMedia;
//   * the game thread calls the request methods (they only enqueue, never block) and Poll(), which
//     runs the queued event/reply/connection callbacks one by one, each in its own try/catch;
//   * an audio thread pulls bot audio from Media(npc)->PullAudio().
//
// NPC handles (NpcId) survive daemon restarts: when the daemon comes back with a new instance_id
// the client reopens every NPC that was open, resuming its character_session_id. If the character
// service no longer knows that conversation (convai_not_found), it opens a fresh one instead.
//
// This header includes neither ZeroMQ nor msgpack (see codec.h for why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convai_bridge/export.h"
#include "convai_bridge/message.h"
#include "convai_bridge/media.h"

CVB_SUPPRESS_DLL_INTERFACE_WARNING

namespace cvb {

inline constexpr const char* kClientName = "convai-bridge-cpp";
inline constexpr const char* kClientVersion = "0.1.0";

struct ConnectionInfo {
  std::string endpoint;
  std::string token;
  std::string instance_id;
  int64_t pid = 0;
};

// Reads the daemon's connection.json (path in UTF-8). Returns false with a reason when missing or
// malformed.
CONVAIBRIDGECORE_API bool ReadConnectionFile(const std::string& path, ConnectionInfo* out, std::string* error);

// Where the daemon writes connection.json, the same rule for every client (PROTOCOL.md section 1):
//   1. $CONVAI_BRIDGE_CONNECTION_FILE when set and non-empty (a full path);
//   2. $XDG_CONFIG_HOME/convai-bridge/connection.json when XDG_CONFIG_HOME is an absolute path;
//   3. on Windows %APPDATA%\convai-bridge\connection.json;
//   4. otherwise ~/.config/convai-bridge/connection.json ($HOME; %USERPROFILE% on Windows).
// Result in UTF-8, with the platform's separator.
CONVAIBRIDGECORE_API std::string DefaultConnectionFilePath();

enum class PathStyle : uint8_t { Posix, Windows };
inline constexpr PathStyle kNativePathStyle =
#if defined(_WIN32)
    PathStyle::Windows;
#else
    PathStyle::Posix;
#endif
// Returns the variable's value (UTF-8), or nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
// The rule above for a given environment and OS flavour (DefaultConnectionFilePath() is this with
// the process environment and kNativePathStyle); tests use it to check the Windows branch anywhere.
CONVAIBRIDGECORE_API std::string ResolveConnectionFilePath(const EnvLookup& env, PathStyle style);

enum class ConnectionState : uint8_t {
  Stopped,      // Start() not called, or Stop() done
  Connecting,   // no daemon yet (no connection file, or the endpoint does not answer)
  Handshaking,  // hello sent, waiting for welcome
  Ready,        // welcome received; sessions can be used
  Failed,       // the daemon refused us for good (version_mismatch); no more retries
};
CONVAIBRIDGECORE_API const char* ToString(ConnectionState state);

struct ConnectionEvent {
  ConnectionState state = ConnectionState::Stopped;
  std::string instance_id;
  bool instance_changed = false;  // Ready with a different instance_id than before: the daemon restarted
  std::string error_code;         // version_mismatch / unauthorized when the handshake was refused
  std::string detail;             // human-readable reason
};

using NpcId = uint32_t;  // 0 = not an NPC (connection-level messages)

// Outcome of one request: the daemon's ack or error, or a local failure. Local codes:
// not_connected, connection_lost, session_not_ready, unknown_npc, timeout, stopped, invalid_request.
struct Reply {
  bool ok = false;
  std::string code;
  std::string message;
  bool retryable = false;
  bool fatal = false;
  std::optional<int64_t> turn;     // ack.turn: the turn the answer will use
  std::optional<std::string> sid;  // ack.sid for session_open
  std::optional<ValueMap> result;  // ack.result
};
using ReplyCallback = std::function<void(const Reply&)>;

struct ClientOptions {
  std::string connection_file;  // empty: DefaultConnectionFilePath(); re-read on every reconnect
  std::string endpoint;         // overrides the connection file's endpoint
  std::string token;            // overrides the connection file's token
  std::string client_name = kClientName;
  std::string client_version = kClientVersion;
  std::string engine = "unreal";
  // Used until welcome.limits says otherwise.
  int heartbeat_ms = 2000;
  int client_timeout_ms = 10000;
  // When > 0, overrides welcome.limits.client_timeout_ms for detecting a silent daemon.
  int silence_timeout_ms = 0;
  int handshake_timeout_ms = 3000;
  int request_timeout_ms = 15000;
  int reconnect_backoff_max_ms = 2000;
  int audio_buffer_ms = 2000;           // per-NPC bot audio ring
  bool forward_audio_frames = false;    // keep PCM in audio_out events handed to Poll (normally stripped)
  size_t max_queued_events = 65536;     // game-thread queue bound (oldest events dropped past it)
  size_t max_message_bytes = 16u << 20; // incoming message bound (ZMQ_MAXMSGSIZE and decoder)
};

struct NpcStatus {
  NpcId id = 0;
  bool ready = false;              // session_opened received on the current connection
  std::string sid;
  std::string character_id;
  std::string character_session_id;
  std::string backend;
  std::vector<std::string> capabilities;
  int64_t latest_turn = 0;
  uint64_t opens = 0;              // how many times it was (re)opened
};

struct ClientStats {
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t decode_errors = 0;
  uint64_t unknown_messages = 0;
  uint64_t handler_exceptions = 0;
  uint64_t reconnects = 0;
  uint64_t pings_answered = 0;
  uint64_t audio_in_sent = 0;
  uint64_t audio_in_dropped = 0;
  uint64_t audio_out_received = 0;
  uint64_t audio_out_dropped = 0;  // stale turn (interrupted) or ring overflow
  uint64_t events_dropped = 0;     // game-thread queue overflow
};

class CONVAIBRIDGECORE_API Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Start();  // spawns the network thread; returns at once
  void Stop();   // closes sessions (best effort), joins the thread; pending requests fail with "stopped"

  // ---- game thread ----
  // Runs queued callbacks (messages, replies, connection changes); returns how many ran.
  size_t Poll(size_t max_items = static_cast<size_t>(-1));
  // Set these on the thread that calls Poll. Messages of NPC sessions come with their NpcId.
  void SetMessageHandler(std::function<void(NpcId, const Message&)> handler);
  void SetConnectionHandler(std::function<void(const ConnectionEvent&)> handler);
  // Problems that are not replies: an exception escaping a handler, an undecodable daemon message.
  void SetProblemHandler(std::function<void(const std::string& what)> handler);

  // ---- any thread ----
  struct OpenResult {
    NpcId npc = 0;
    std::future<Reply> reply;  // the session_open ack (session_opened follows as a message)
  };
  // Opens now, or as soon as the daemon is ready; reopened automatically after a daemon restart.
  // config.audio defaults to 48000 Hz mono 20 ms frames.
  OpenResult OpenNpc(msg::SessionOpen config, ReplyCallback on_reply = {});
  std::future<Reply> CloseNpc(NpcId npc, ReplyCallback on_reply = {});

  std::future<Reply> SendText(NpcId npc, std::string text, ReplyCallback on_reply = {});
  std::future<Reply> EndOfUtterance(NpcId npc, ReplyCallback on_reply = {});
  std::future<Reply> Trigger(NpcId npc, std::string name, std::optional<std::string> message = std::nullopt,
                             ReplyCallback on_reply = {});
  std::future<Reply> UpdateContext(NpcId npc, msg::ContextUpdate update, ReplyCallback on_reply = {});
  std::future<Reply> SetDynamicInfo(NpcId npc, DynamicInfo info, ReplyCallback on_reply = {});
  std::future<Reply> UpdateScene(NpcId npc, std::vector<SceneObject> scene, ReplyCallback on_reply = {});
  std::future<Reply> SetTemplateKeys(NpcId npc, StringMap keys, ReplyCallback on_reply = {});
  // Flushes this NPC's queued bot audio and lip sync at once, then asks the daemon to stop the turn.
  std::future<Reply> Interrupt(NpcId npc, ReplyCallback on_reply = {});
  std::future<Reply> SetTts(NpcId npc, bool enabled, ReplyCallback on_reply = {});
  std::future<Reply> SetSttMuted(NpcId npc, bool muted, ReplyCallback on_reply = {});
  // Any session request body (msg::Text, msg::Trigger, ...); the client fills id and sid.
  std::future<Reply> SendSessionRequest(NpcId npc, Body body, ReplyCallback on_reply = {});

  // Microphone audio (audio_in, seq assigned per session). Dropped while the session is not ready.
  // Returns false when it was dropped right away.
  bool SendAudio(NpcId npc, const int16_t* interleaved, size_t frames, int sample_rate, int channels);

  std::shared_ptr<NpcMedia> Media(NpcId npc) const;
  std::optional<NpcStatus> Status(NpcId npc) const;
  ConnectionState State() const;
  std::string InstanceId() const;
  std::optional<Limits> CurrentLimits() const;
  ClientStats Stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cvb

CVB_RESTORE_DLL_INTERFACE_WARNING

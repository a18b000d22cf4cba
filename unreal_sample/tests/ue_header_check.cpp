// Compiled the way Unreal compiles a game module: C++20, no exceptions, no RTTI, with Unreal's
// `check`/`verify`/`ensure` macros defined before the core's public headers. If this stops
// compiling, the plugin's Unreal layer would too. In the shared-module build (CVB_CORE_SHARED) it
// is also linked as its own hidden-visibility module against the core module: it calls every core
// entry point the plugin's Unreal layer calls, so a missing CONVAIBRIDGECORE_API fails the link.
#include "unreal_macros.h"

#include "convai_bridge/client.h"
#include "convai_bridge/codec.h"
#include "convai_bridge/lipsync_names.h"
#include "convai_bridge/media.h"

int UnrealStyleUse(cvb::Client& client, cvb::NpcId npc) {
  check(npc != 0);
  cvb::msg::SessionOpen config;
  config.character_id = "c";
  config.lipsync = cvb::LipSync{"visemes", std::nullopt, std::nullopt};
  auto opened = client.OpenNpc(config, [](const cvb::Reply& r) { verify(r.ok); });
  client.SendText(opened.npc, "hi", [](const cvb::Reply&) {});
  client.SetMessageHandler([](cvb::NpcId, const cvb::Message& m) {
    if (const auto* text = m.As<cvb::msg::BotText>()) (void)text->text.size();
    (void)m.type_name();
  });
  std::shared_ptr<cvb::NpcMedia> media = client.Media(opened.npc);
  int16_t pcm[64] = {};
  const size_t got = media ? media->PullAudio(pcm, 64) : 0;
  const cvb::LipSyncSample lip = media ? media->CurrentLipSync(0) : cvb::LipSyncSample{};
  return static_cast<int>(got) + static_cast<int>(lip.weights.size()) + (ensure(true) ? 1 : 0);
}

// Everything else UConvaiBridgeSubsystem / UConvaiNpcComponent / UConvaiVoiceSoundWave call.
int UnrealLayerCalls(cvb::NpcId npc) {
  cvb::ClientOptions options;
  options.connection_file = cvb::DefaultConnectionFilePath();
  auto client = std::make_shared<cvb::Client>(options);
  client->SetConnectionHandler([](const cvb::ConnectionEvent& e) { (void)cvb::ToString(e.state); });
  client->SetProblemHandler([](const std::string&) {});
  client->Start();
  client->Poll();
  client->EndOfUtterance(npc, {});
  client->Interrupt(npc, {});
  client->Trigger(npc, "wave", std::nullopt, {});
  client->UpdateContext(npc, cvb::msg::ContextUpdate{}, {});
  client->SetDynamicInfo(npc, cvb::DynamicInfo{}, {});
  client->UpdateScene(npc, {cvb::SceneObject{}}, {});
  client->SetTemplateKeys(npc, {{"k", "v"}}, {});
  client->SetTts(npc, true, {});
  client->SetSttMuted(npc, false, {});
  const int16_t mic[4] = {};
  client->SendAudio(npc, mic, 4, 48000, 1);
  const bool ready = client->State() == cvb::ConnectionState::Ready && !client->InstanceId().empty();
  const auto status = client->Status(npc);
  client->CloseNpc(npc, {});
  client->Stop();
  std::shared_ptr<cvb::NpcMedia> media = client->Media(npc);
  const int rate = media ? media->SampleRate() + media->Channels() + (media->IsSpeaking(0) ? 1 : 0) : 0;
  return rate + (ready ? 1 : 0) + (status ? 1 : 0) + static_cast<int>(cvb::kArkitBlendshapeNames.size()) +
         static_cast<int>(cvb::kMetaHumanBlendshapeNames.size()) + static_cast<int>(cvb::kVisemeNames.size());
}

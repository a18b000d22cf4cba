// Compiled (never run) the way Unreal compiles a game module: C++20, no exceptions, no RTTI, with
// Unreal's `check`/`verify`/`ensure` macros defined before the core's public headers. If this stops
// compiling, the plugin's Unreal layer would too.
#include "unreal_macros.h"

#include "convai_bridge/client.h"
#include "convai_bridge/codec.h"
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
  });
  std::shared_ptr<cvb::NpcMedia> media = client.Media(opened.npc);
  int16_t pcm[64] = {};
  const size_t got = media ? media->PullAudio(pcm, 64) : 0;
  const cvb::LipSyncSample lip = media ? media->CurrentLipSync(0) : cvb::LipSyncSample{};
  return static_cast<int>(got) + static_cast<int>(lip.weights.size()) + (ensure(true) ? 1 : 0);
}

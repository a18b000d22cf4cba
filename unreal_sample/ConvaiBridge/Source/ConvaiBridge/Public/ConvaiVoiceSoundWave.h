// Streaming playback of one NPC's voice: the audio render thread pulls PCM straight from the NPC's
// ring buffer in the core (cvb::NpcMedia), so the game thread never touches audio.
#pragma once

#include "CoreMinimal.h"
#include "Sound/SoundWaveProcedural.h"

#include <memory>

#include "convai_bridge/media.h"

#include "ConvaiVoiceSoundWave.generated.h"

UCLASS()
class CONVAIBRIDGE_API UConvaiVoiceSoundWave : public USoundWaveProcedural
{
	GENERATED_BODY()

public:
	// Call once, before the sound plays; the media's format becomes the wave's format.
	void Initialize(std::shared_ptr<cvb::NpcMedia> InMedia);

	// Audio render thread. SamplesNeeded counts interleaved samples; returns bytes written. Always
	// fills the whole buffer (silence when the NPC is quiet) so the voice never "finishes".
	virtual int32 GeneratePCMData(uint8* PCMData, const int32 SamplesNeeded) override;

private:
	std::shared_ptr<cvb::NpcMedia> Media;  // set before Play, never reassigned while playing
};

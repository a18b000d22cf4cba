// Push-to-talk microphone: Unreal's audio capture (AudioCaptureCore) on its own thread, converted to
// mono int16 and handed to the core, which sends it as audio_in frames. The capture callback never
// touches UObjects; it only holds a weak reference to the client.
#pragma once

#include "CoreMinimal.h"
#include "AudioCaptureCore.h"

#include <memory>
#include <vector>

namespace cvb
{
class Client;
}

class FConvaiMicrophone
{
public:
	FConvaiMicrophone(std::weak_ptr<cvb::Client> InClient, uint32 InNpcId);
	~FConvaiMicrophone();

	bool Start();
	void Stop();

private:
	void OnCapture(const float* Samples, int32 NumFrames, int32 NumChannels, int32 SampleRate);

	Audio::FAudioCapture Capture;
	std::weak_ptr<cvb::Client> Client;
	uint32 NpcId = 0;
	std::vector<int16_t> Mono;  // capture thread only
};

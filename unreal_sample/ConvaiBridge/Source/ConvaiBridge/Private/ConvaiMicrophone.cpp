#include "ConvaiMicrophone.h"

#include "ConvaiBridgeLog.h"
#include "Misc/EngineVersionComparison.h"

#include "convai_bridge/client.h"

FConvaiMicrophone::FConvaiMicrophone(std::weak_ptr<cvb::Client> InClient, uint32 InNpcId)
	: Client(MoveTemp(InClient))
	, NpcId(InNpcId)
{
}

FConvaiMicrophone::~FConvaiMicrophone()
{
	Stop();
}

bool FConvaiMicrophone::Start()
{
	Audio::FAudioCaptureDeviceParams Params;  // the default input device at its native rate
	constexpr uint32 FramesPerCallback = 1024;
#if UE_VERSION_OLDER_THAN(5, 3, 0)
	Audio::FOnCaptureFunction Callback = [this](const float* Samples, int32 NumFrames, int32 NumChannels,
		int32 SampleRate, double StreamTime, bool bOverflow) { this->OnCapture(Samples, NumFrames, NumChannels, SampleRate); };
	const bool bOpened = Capture.OpenCaptureStream(Params, MoveTemp(Callback), FramesPerCallback);
#else
	// 5.3+: the callback gets untyped samples; the default stream format is float.
	Audio::FOnAudioCaptureFunction Callback = [this](const void* Samples, int32 NumFrames, int32 NumChannels,
		int32 SampleRate, double StreamTime, bool bOverflow)
	{
		this->OnCapture(static_cast<const float*>(Samples), NumFrames, NumChannels, SampleRate);
	};
	const bool bOpened = Capture.OpenAudioCaptureStream(Params, MoveTemp(Callback), FramesPerCallback);
#endif
	if (!bOpened || !Capture.StartStream())
	{
		UE_LOG(LogConvaiBridge, Warning, TEXT("could not open the default microphone"));
		Capture.CloseStream();
		return false;
	}
	return true;
}

void FConvaiMicrophone::Stop()
{
	if (Capture.IsStreamOpen())
	{
		Capture.StopStream();   // returns after the last callback
		Capture.CloseStream();
	}
}

void FConvaiMicrophone::OnCapture(const float* Samples, int32 NumFrames, int32 NumChannels, int32 SampleRate)
{
	if (Samples == nullptr || NumFrames <= 0 || NumChannels <= 0)
	{
		return;
	}
	std::shared_ptr<cvb::Client> Locked = Client.lock();
	if (!Locked)
	{
		return;
	}
	// Downmix to mono and convert float [-1, 1] to int16: half the bytes of stereo, and what speech
	// recognition wants anyway. The daemon resamples whatever rate the device runs at.
	Mono.resize(static_cast<size_t>(NumFrames));
	for (int32 Frame = 0; Frame < NumFrames; ++Frame)
	{
		float Sum = 0.0f;
		for (int32 Channel = 0; Channel < NumChannels; ++Channel)
		{
			Sum += Samples[Frame * NumChannels + Channel];
		}
		const float Sample = FMath::Clamp(Sum / static_cast<float>(NumChannels), -1.0f, 1.0f);
		Mono[static_cast<size_t>(Frame)] = static_cast<int16_t>(Sample * 32767.0f);
	}
	Locked->SendAudio(NpcId, Mono.data(), Mono.size(), SampleRate, 1);
}

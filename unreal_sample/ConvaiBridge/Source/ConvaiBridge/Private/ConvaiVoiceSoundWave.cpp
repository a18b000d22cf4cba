#include "ConvaiVoiceSoundWave.h"

#include "Sound/SoundGroups.h"

void UConvaiVoiceSoundWave::Initialize(std::shared_ptr<cvb::NpcMedia> InMedia)
{
	Media = std::move(InMedia);
	const int32 Rate = Media ? Media->SampleRate() : 48000;
	SetSampleRate(Rate);
	NumChannels = Media ? Media->Channels() : 1;
	Duration = INDEFINITELY_LOOPING_DURATION;
	SoundGroup = SOUNDGROUP_Voice;
	bLooping = false;
	bCanProcessAsync = true;
}

int32 UConvaiVoiceSoundWave::GeneratePCMData(uint8* PCMData, const int32 SamplesNeeded)
{
	if (SamplesNeeded <= 0)
	{
		return 0;
	}
	int16* Out = reinterpret_cast<int16*>(PCMData);
	if (Media)
	{
		Media->PullAudio(Out, static_cast<size_t>(SamplesNeeded));  // zero-fills what is missing
	}
	else
	{
		FMemory::Memzero(Out, SamplesNeeded * sizeof(int16));
	}
	return SamplesNeeded * static_cast<int32>(sizeof(int16));
}

#include "ConvaiNpcComponent.h"

#include "Components/AudioComponent.h"
#include "ConvaiBridgeLog.h"
#include "ConvaiBridgeSubsystem.h"
#include "ConvaiMicrophone.h"
#include "ConvaiVoiceSoundWave.h"
#include "Engine/GameInstance.h"
#include "Engine/World.h"
#include "GameFramework/Actor.h"
#include "Interfaces/IPluginManager.h"
#include "Misc/FileHelper.h"
#include "Misc/Paths.h"
#include "Sound/SoundAttenuation.h"

UConvaiNpcComponent::UConvaiNpcComponent()
{
	PrimaryComponentTick.bCanEverTick = true;  // lip sync is sampled every frame
	PrimaryComponentTick.TickGroup = TG_PrePhysics;
}

UConvaiBridgeSubsystem* UConvaiNpcComponent::GetBridge() const
{
	const UWorld* World = GetWorld();
	UGameInstance* GameInstance = World ? World->GetGameInstance() : nullptr;
	return GameInstance ? GameInstance->GetSubsystem<UConvaiBridgeSubsystem>() : nullptr;
}

void UConvaiNpcComponent::BeginPlay()
{
	Super::BeginPlay();
	LoadCurveNames();
	if (bOpenOnBeginPlay)
	{
		OpenConversation();
	}
}

void UConvaiNpcComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	CloseConversation();
	Super::EndPlay(EndPlayReason);
}

cvb::msg::SessionOpen UConvaiNpcComponent::BuildSessionConfig() const
{
	static const char* const BackendNames[] = {"live", "interaction", "stream"};
	cvb::msg::SessionOpen Config;
	Config.character_id = ConvaiToUtf8(CharacterId);
	Config.backend = BackendNames[static_cast<uint8>(Backend)];
	Config.label = ConvaiToUtf8(Label.IsEmpty() ? GetOwner()->GetName() : Label);
	Config.voice = bVoice;
	Config.audio = cvb::AudioFormat{OutputSampleRate, 1, 20};
	switch (LipSync)
	{
	case EConvaiLipSync::Visemes:
		Config.lipsync = cvb::LipSync{"visemes", std::nullopt, std::nullopt};
		break;
	case EConvaiLipSync::ArkitBlendshapes:
		Config.lipsync = cvb::LipSync{"blendshapes", std::string("arkit"), 60};
		break;
	case EConvaiLipSync::MetaHumanBlendshapes:
		Config.lipsync = cvb::LipSync{"blendshapes", std::string("mha"), 30};
		break;
	default:
		break;
	}
	if (Actions.Num() > 0 || SceneObjects.Num() > 0)
	{
		cvb::ActionConfig ActionConfig;
		std::vector<std::string> Names;
		for (const FString& Action : Actions)
		{
			Names.push_back(ConvaiToUtf8(Action));
		}
		std::vector<cvb::SceneObject> Objects;
		for (const FConvaiSceneObject& Object : SceneObjects)
		{
			cvb::SceneObject Item;
			Item.name = ConvaiToUtf8(Object.Name);
			if (!Object.Description.IsEmpty())
			{
				Item.description = ConvaiToUtf8(Object.Description);
			}
			Objects.push_back(std::move(Item));
		}
		ActionConfig.actions = std::move(Names);
		ActionConfig.objects = std::move(Objects);
		Config.action_config = std::move(ActionConfig);
	}
	return Config;
}

void UConvaiNpcComponent::OpenConversation()
{
	UConvaiBridgeSubsystem* Bridge = GetBridge();
	if (!Bridge || NpcId != 0)
	{
		return;
	}
	if (CharacterId.IsEmpty())
	{
		OnError.Broadcast(TEXT("invalid_request"), TEXT("CharacterId is not set"), false);
		return;
	}
	// Returns at once; the session opens when the daemon is ready, and is reopened (resuming the
	// conversation) if the daemon restarts.
	NpcId = Bridge->RegisterNpc(this, BuildSessionConfig());
	Media = Bridge->GetClient()->Media(NpcId);
	StartVoice();
}

void UConvaiNpcComponent::CloseConversation()
{
	StopTalking(false);
	StopVoice();
	if (UConvaiBridgeSubsystem* Bridge = GetBridge(); Bridge && NpcId != 0)
	{
		Bridge->UnregisterNpc(NpcId);
	}
	NpcId = 0;
	Media.reset();
	bSessionReady = false;
	bSpeaking = false;
	LipSyncWeights.Reset();
	LipSyncCurves.Reset();
}

void UConvaiNpcComponent::StartVoice()
{
	if (!Media || !bVoice || !GetOwner())
	{
		return;
	}
	VoiceWave = NewObject<UConvaiVoiceSoundWave>(this);
	VoiceWave->Initialize(Media);
	VoiceComponent = NewObject<UAudioComponent>(GetOwner(), NAME_None, RF_Transient);
	VoiceComponent->bAutoActivate = false;
	VoiceComponent->bAutoDestroy = false;
	if (USceneComponent* Root = GetOwner()->GetRootComponent())
	{
		VoiceComponent->SetupAttachment(Root);
	}
	if (VoiceAttenuation)
	{
		VoiceComponent->AttenuationSettings = VoiceAttenuation;
	}
	VoiceComponent->RegisterComponent();
	VoiceComponent->SetSound(VoiceWave);
	VoiceComponent->Play();  // plays silence until the NPC speaks
}

void UConvaiNpcComponent::StopVoice()
{
	if (VoiceComponent)
	{
		VoiceComponent->Stop();
		VoiceComponent->DestroyComponent();
		VoiceComponent = nullptr;
	}
	VoiceWave = nullptr;
}

cvb::ReplyCallback UConvaiNpcComponent::ReportFailures(const TCHAR* What)
{
	// Runs on the game thread (inside the subsystem's Poll); the component may be gone by then.
	TWeakObjectPtr<UConvaiNpcComponent> Self(this);
	const FString Request(What);
	return [Self, Request](const cvb::Reply& Reply)
	{
		UConvaiNpcComponent* Component = Self.Get();
		if (Component && !Reply.ok && Reply.code != "stopped")
		{
			UE_LOG(LogConvaiBridge, Warning, TEXT("%s failed: %s"), *Request, *ConvaiToFString(Reply.message));
			Component->OnError.Broadcast(ConvaiToFString(Reply.code), ConvaiToFString(Reply.message), Reply.fatal);
		}
	};
}

void UConvaiNpcComponent::SendText(const FString& Text)
{
	if (UConvaiBridgeSubsystem* Bridge = GetBridge(); Bridge && Bridge->GetClient() && NpcId != 0)
	{
		Bridge->GetClient()->SendText(NpcId, ConvaiToUtf8(Text), ReportFailures(TEXT("SendText")));
	}
}

void UConvaiNpcComponent::StartTalking()
{
	UConvaiBridgeSubsystem* Bridge = GetBridge();
	if (!Bridge || NpcId == 0 || Microphone.IsValid())
	{
		return;
	}
	if (bInterruptWhenPlayerTalks && bSpeaking)
	{
		Interrupt();
	}
	Microphone = MakeShared<FConvaiMicrophone>(Bridge->GetClientWeak(), NpcId);
	if (!Microphone->Start())
	{
		Microphone.Reset();
		OnError.Broadcast(TEXT("microphone"), TEXT("could not open the default microphone"), false);
	}
}

void UConvaiNpcComponent::StopTalking(bool bEndOfUtterance)
{
	if (!Microphone.IsValid())
	{
		return;
	}
	Microphone->Stop();
	Microphone.Reset();
	UConvaiBridgeSubsystem* Bridge = GetBridge();
	if (bEndOfUtterance && Bridge && Bridge->GetClient() && NpcId != 0)
	{
		// On live the server's voice activity detection may already have ended the turn.
		TWeakObjectPtr<UConvaiNpcComponent> Self(this);
		Bridge->GetClient()->EndOfUtterance(NpcId, [Self](const cvb::Reply& Reply)
		{
			UConvaiNpcComponent* Component = Self.Get();
			if (Component && !Reply.ok && Reply.code != "unsupported" && Reply.code != "stopped")
			{
				Component->OnError.Broadcast(ConvaiToFString(Reply.code), ConvaiToFString(Reply.message), Reply.fatal);
			}
		});
	}
}

void UConvaiNpcComponent::Interrupt()
{
	if (UConvaiBridgeSubsystem* Bridge = GetBridge(); Bridge && Bridge->GetClient() && NpcId != 0)
	{
		Bridge->GetClient()->Interrupt(NpcId, ReportFailures(TEXT("Interrupt")));  // local audio stops at once
	}
}

void UConvaiNpcComponent::SendTrigger(const FString& TriggerName, const FString& Message)
{
	if (UConvaiBridgeSubsystem* Bridge = GetBridge(); Bridge && Bridge->GetClient() && NpcId != 0)
	{
		std::optional<std::string> Text;
		if (!Message.IsEmpty())
		{
			Text = ConvaiToUtf8(Message);
		}
		Bridge->GetClient()->Trigger(NpcId, ConvaiToUtf8(TriggerName), Text, ReportFailures(TEXT("SendTrigger")));
	}
}

void UConvaiNpcComponent::AddContext(const FString& Text)
{
	if (UConvaiBridgeSubsystem* Bridge = GetBridge(); Bridge && Bridge->GetClient() && NpcId != 0)
	{
		cvb::msg::ContextUpdate Update;
		Update.text = ConvaiToUtf8(Text);
		Update.mode = "append";
		Update.run_llm = "false";
		Bridge->GetClient()->UpdateContext(NpcId, std::move(Update), ReportFailures(TEXT("AddContext")));
	}
}

void UConvaiNpcComponent::HandleBridgeMessage(const cvb::Message& Message)
{
	if (Message.Is<cvb::msg::SessionOpened>())
	{
		bSessionReady = true;
		OnSessionReady.Broadcast();
	}
	else if (const cvb::msg::SessionClosed* Closed = Message.As<cvb::msg::SessionClosed>())
	{
		bSessionReady = false;
		OnSessionClosed.Broadcast(ConvaiToFString(Closed->reason));
	}
	else if (const cvb::msg::UserTranscript* Transcript = Message.As<cvb::msg::UserTranscript>())
	{
		OnTranscript.Broadcast(ConvaiToFString(Transcript->text), Transcript->final);
	}
	else if (const cvb::msg::BotText* Chunk = Message.As<cvb::msg::BotText>())
	{
		OnBotText.Broadcast(ConvaiToFString(Chunk->text), static_cast<int32>(Chunk->turn));
	}
	else if (const cvb::msg::BotReply* Reply = Message.As<cvb::msg::BotReply>())
	{
		OnBotReply.Broadcast(ConvaiToFString(Reply->text), static_cast<int32>(Reply->turn));
	}
	else if (const cvb::msg::Actions* Chosen = Message.As<cvb::msg::Actions>())
	{
		TArray<FConvaiAction> Out;
		for (const cvb::Action& Action : Chosen->actions)
		{
			FConvaiAction& Item = Out.AddDefaulted_GetRef();
			Item.Name = ConvaiToFString(Action.name);
			Item.Target = ConvaiToFString(Action.target.value_or(std::string()));
		}
		OnActions.Broadcast(Out, static_cast<int32>(Chosen->turn));
	}
	else if (const cvb::msg::Emotion* Feeling = Message.As<cvb::msg::Emotion>())
	{
		OnEmotion.Broadcast(ConvaiToFString(Feeling->name), static_cast<int32>(Feeling->scale));
	}
	else if (const cvb::msg::Narrative* Section = Message.As<cvb::msg::Narrative>())
	{
		OnNarrativeSection.Broadcast(ConvaiToFString(Section->section_id));
	}
	else if (const cvb::msg::TurnCompleted* Done = Message.As<cvb::msg::TurnCompleted>())
	{
		OnTurnCompleted.Broadcast(static_cast<int32>(Done->turn), Done->interrupted);
	}
	else if (const cvb::msg::Error* Failure = Message.As<cvb::msg::Error>())
	{
		OnError.Broadcast(ConvaiToFString(Failure->code), ConvaiToFString(Failure->message), Failure->fatal);
	}
	else if (const cvb::msg::Unknown* Newer = Message.As<cvb::msg::Unknown>())
	{
		UE_LOG(LogConvaiBridge, Verbose, TEXT("ignoring event '%s' from a newer daemon"), *ConvaiToFString(Newer->type));
	}
}

void UConvaiNpcComponent::LoadCurveNames()
{
	CurveNames.Reset();
	if (LipSync == EConvaiLipSync::Visemes)
	{
		for (const char* Name : cvb::kVisemeNames)
		{
			CurveNames.Add(FName(UTF8_TO_TCHAR(Name)));
		}
		return;
	}
	const TCHAR* File = LipSync == EConvaiLipSync::ArkitBlendshapes ? TEXT("arkit_order_61.txt")
		: LipSync == EConvaiLipSync::MetaHumanBlendshapes ? TEXT("metahuman_order_251.txt") : nullptr;
	const TSharedPtr<IPlugin> Plugin = IPluginManager::Get().FindPlugin(TEXT("ConvaiBridge"));
	TArray<FString> Lines;
	if (File && Plugin && FFileHelper::LoadFileToStringArray(Lines, *FPaths::Combine(Plugin->GetBaseDir(), TEXT("Resources"), File)))
	{
		for (const FString& Line : Lines)  // "<index>\t<name>"
		{
			FString Index, Name;
			if (Line.Split(TEXT("\t"), &Index, &Name))
			{
				CurveNames.Add(FName(*Name.TrimStartAndEnd()));
			}
		}
	}
}

void UConvaiNpcComponent::TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction)
{
	Super::TickComponent(DeltaTime, TickType, ThisTickFunction);
	if (!Media)
	{
		return;
	}
	// The face follows the audio the player hears: sample position minus the output latency.
	const int64 LatencyFrames = static_cast<int64>(OutputLatencySeconds * Media->SampleRate());
	const cvb::LipSyncSample Lip = Media->CurrentLipSync(LatencyFrames);
	if (Lip.speaking != bSpeaking)
	{
		bSpeaking = Lip.speaking;
		OnSpeakingChanged.Broadcast(bSpeaking);
	}
	LipSyncWeights.SetNumZeroed(static_cast<int32>(Lip.weights.size()));
	for (int32 Index = 0; Index < LipSyncWeights.Num(); ++Index)
	{
		LipSyncWeights[Index] = Lip.weights[static_cast<size_t>(Index)];
	}
	for (int32 Index = 0; Index < CurveNames.Num(); ++Index)
	{
		LipSyncCurves.FindOrAdd(CurveNames[Index]) = LipSyncWeights.IsValidIndex(Index) ? LipSyncWeights[Index] : 0.0f;
	}
}

float UConvaiNpcComponent::GetLipSyncCurve(FName Curve) const
{
	const float* Value = LipSyncCurves.Find(Curve);
	return Value ? *Value : 0.0f;
}

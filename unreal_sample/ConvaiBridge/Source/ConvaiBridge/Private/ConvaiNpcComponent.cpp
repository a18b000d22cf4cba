#include "ConvaiNpcComponent.h"

#include "Components/AudioComponent.h"
#include "ConvaiBridgeLog.h"
#include "ConvaiBridgeSubsystem.h"
#include "ConvaiMicrophone.h"
#include "ConvaiVoiceSoundWave.h"
#include "Engine/GameInstance.h"
#include "Engine/World.h"
#include "GameFramework/Actor.h"
#include "Sound/SoundAttenuation.h"

#include "convai_bridge/lipsync_names.h"

namespace
{
cvb::DynamicInfo ToCore(const FConvaiDynamicInfo& Info)
{
	cvb::DynamicInfo Out;
	Out.text = ConvaiToUtf8(Info.Text);
	if (!Info.StaticText.IsEmpty())
	{
		Out.static_text = ConvaiToUtf8(Info.StaticText);
	}
	Out.keep_in_context = Info.bKeepInContext;
	return Out;
}

std::vector<cvb::SceneObject> ToCore(const TArray<FConvaiSceneObject>& Objects)
{
	std::vector<cvb::SceneObject> Out;
	for (const FConvaiSceneObject& Object : Objects)
	{
		cvb::SceneObject Item;
		Item.name = ConvaiToUtf8(Object.Name);
		if (!Object.Description.IsEmpty())
		{
			Item.description = ConvaiToUtf8(Object.Description);
		}
		Out.push_back(std::move(Item));
	}
	return Out;
}

cvb::StringMap ToCore(const TMap<FString, FString>& Keys)
{
	cvb::StringMap Out;
	for (const TPair<FString, FString>& Pair : Keys)
	{
		Out.emplace_back(ConvaiToUtf8(Pair.Key), ConvaiToUtf8(Pair.Value));
	}
	return Out;
}
}  // namespace

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
		ActionConfig.actions = std::move(Names);
		ActionConfig.objects = ToCore(SceneObjects);
		Config.action_config = std::move(ActionConfig);
	}
	if (!DynamicInfo.Text.IsEmpty())
	{
		Config.dynamic_info = ToCore(DynamicInfo);
	}
	if (TemplateKeys.Num() > 0)
	{
		Config.narrative_template_keys = ToCore(TemplateKeys);
	}
	if (!CharacterSessionId.IsEmpty())
	{
		Config.character_session_id = ConvaiToUtf8(CharacterSessionId);
	}
	if (!EndUserId.IsEmpty())
	{
		Config.end_user_id = ConvaiToUtf8(EndUserId);
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

cvb::Client* UConvaiNpcComponent::ReadyClient() const
{
	UConvaiBridgeSubsystem* Bridge = GetBridge();
	return Bridge && NpcId != 0 ? Bridge->GetClient() : nullptr;
}

void UConvaiNpcComponent::AddContext(const FString& Text)
{
	UpdateContext(Text, EConvaiContextMode::Append, EConvaiRunLlm::No);
}

void UConvaiNpcComponent::UpdateContext(const FString& Text, EConvaiContextMode Mode, EConvaiRunLlm RunLlm,
	const FString& AttentionObject)
{
	static const char* const Modes[] = {"append", "replace", "reset"};
	static const char* const RunLlmNames[] = {"false", "true", "auto"};
	if (cvb::Client* Client = ReadyClient())
	{
		cvb::msg::ContextUpdate Update;
		Update.text = ConvaiToUtf8(Text);
		Update.mode = Modes[static_cast<uint8>(Mode)];
		Update.run_llm = RunLlmNames[static_cast<uint8>(RunLlm)];
		if (!AttentionObject.IsEmpty())
		{
			Update.current_attention_object = ConvaiToUtf8(AttentionObject);
		}
		Client->UpdateContext(NpcId, std::move(Update), ReportFailures(TEXT("UpdateContext")));
	}
}

void UConvaiNpcComponent::SetDynamicInfo(const FConvaiDynamicInfo& Info)
{
	DynamicInfo = Info;  // also what a reopened session starts with
	if (cvb::Client* Client = ReadyClient())
	{
		Client->SetDynamicInfo(NpcId, ToCore(Info), ReportFailures(TEXT("SetDynamicInfo")));
	}
}

void UConvaiNpcComponent::UpdateScene(const TArray<FConvaiSceneObject>& Objects)
{
	if (cvb::Client* Client = ReadyClient())
	{
		Client->UpdateScene(NpcId, ToCore(Objects), ReportFailures(TEXT("UpdateScene")));
	}
}

void UConvaiNpcComponent::SetTemplateKeys(const TMap<FString, FString>& Keys)
{
	TemplateKeys = Keys;
	if (cvb::Client* Client = ReadyClient())
	{
		Client->SetTemplateKeys(NpcId, ToCore(Keys), ReportFailures(TEXT("SetTemplateKeys")));
	}
}

void UConvaiNpcComponent::SetTtsEnabled(bool bEnabled)
{
	if (cvb::Client* Client = ReadyClient())
	{
		Client->SetTts(NpcId, bEnabled, ReportFailures(TEXT("SetTtsEnabled")));
	}
}

void UConvaiNpcComponent::SetSttMuted(bool bMuted)
{
	if (cvb::Client* Client = ReadyClient())
	{
		Client->SetSttMuted(NpcId, bMuted, ReportFailures(TEXT("SetSttMuted")));
	}
}

FString UConvaiNpcComponent::GetCharacterSessionId() const
{
	const cvb::Client* Client = ReadyClient();
	const std::optional<cvb::NpcStatus> Status = Client ? Client->Status(NpcId) : std::nullopt;
	return Status ? ConvaiToFString(Status->character_session_id) : FString();
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
	else if (const cvb::msg::Moderation* Verdict = Message.As<cvb::msg::Moderation>())
	{
		OnModeration.Broadcast(static_cast<int32>(Verdict->turn.value_or(0)), Verdict->passed,
			ConvaiToFString(Verdict->reason.value_or(std::string())), ConvaiToFString(Verdict->user_input.value_or(std::string())));
	}
	else if (const cvb::msg::NoResponse* Silent = Message.As<cvb::msg::NoResponse>())
	{
		OnNoResponse.Broadcast(static_cast<int32>(Silent->turn), ConvaiToFString(Silent->reason.value_or(std::string())));
	}
	else if (const cvb::msg::IdleWarning* Idle = Message.As<cvb::msg::IdleWarning>())
	{
		OnIdleWarning.Broadcast(static_cast<int32>(Idle->remaining_s), ConvaiToFString(Idle->message.value_or(std::string())));
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
	// Compiled into the core (generated from the protocol's tables): nothing to stage or package.
	CurveNames.Reset();
	cvb::NameTable Table;
	if (LipSync == EConvaiLipSync::Visemes)
	{
		Table = cvb::NameTable{cvb::kVisemeNames.data(), cvb::kVisemeNames.size()};
	}
	else if (LipSync == EConvaiLipSync::ArkitBlendshapes)
	{
		Table = cvb::BlendshapeNames("arkit");
	}
	else if (LipSync == EConvaiLipSync::MetaHumanBlendshapes)
	{
		Table = cvb::BlendshapeNames("mha");
	}
	for (size_t Index = 0; Index < Table.count; ++Index)
	{
		CurveNames.Add(FName(UTF8_TO_TCHAR(Table.names[Index])));
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

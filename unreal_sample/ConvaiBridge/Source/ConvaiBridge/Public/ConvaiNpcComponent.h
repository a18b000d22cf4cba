// One talking NPC: add it to an actor, set CharacterId, bind the events in Blueprint.
//
// Conversation state lives in the core (cvb::Client); this component turns its events into
// Blueprint delegates, plays the voice through a procedural sound wave, captures the microphone
// for push-to-talk, and exposes lip-sync weights sampled at the audio playback clock for Anim
// Blueprints (LipSyncWeights / LipSyncCurves, updated every tick).
#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"

#include <memory>

#include "ConvaiBridgeTypes.h"
#include "convai_bridge/client.h"

#include "ConvaiNpcComponent.generated.h"

class UAudioComponent;
class USoundAttenuation;
class UConvaiVoiceSoundWave;
class UConvaiBridgeSubsystem;
class FConvaiMicrophone;

UCLASS(ClassGroup = (Convai), meta = (BlueprintSpawnableComponent))
class CONVAIBRIDGE_API UConvaiNpcComponent : public UActorComponent
{
	GENERATED_BODY()

public:
	UConvaiNpcComponent();

	// ---- setup ----
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	FString CharacterId;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	EConvaiBackend Backend = EConvaiBackend::Live;

	// Your name for this NPC in the daemon's logs.
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	FString Label;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	bool bOpenOnBeginPlay = true;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	bool bVoice = true;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	EConvaiLipSync LipSync = EConvaiLipSync::Visemes;

	// Actions the character may choose (action_config.actions), and objects it can act on.
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Actions")
	TArray<FString> Actions;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Actions")
	TArray<FConvaiSceneObject> SceneObjects;

	// ---- what the character knows when the conversation opens (change later with the functions) ----
	// Sent when Text is not empty (session_open.dynamic_info).
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Context")
	FConvaiDynamicInfo DynamicInfo;

	// Narrative design template keys ({player_name} -> "Alice").
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Context")
	TMap<FString, FString> TemplateKeys;

	// Resume an earlier conversation (GetCharacterSessionId of a previous play); empty: a new one.
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Context")
	FString CharacterSessionId;

	// Stable id of the player for Convai's memory (session_open.end_user_id).
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Context")
	FString EndUserId;

	// Bot audio format asked of the daemon (it resamples).
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Audio", meta = (ClampMin = "8000", ClampMax = "192000"))
	int32 OutputSampleRate = 48000;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Audio")
	TObjectPtr<USoundAttenuation> VoiceAttenuation;

	// How far the speaker lags behind what the audio thread pulled; shifts the lip-sync clock.
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Audio", meta = (ClampMin = "0.0"))
	float OutputLatencySeconds = 0.04f;

	// Starting to talk while the NPC speaks interrupts it (barge-in).
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai|Audio")
	bool bInterruptWhenPlayerTalks = true;

	// ---- conversation ----
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void OpenConversation();

	UFUNCTION(BlueprintCallable, Category = "Convai")
	void CloseConversation();

	UFUNCTION(BlueprintCallable, Category = "Convai")
	void SendText(const FString& Text);

	// Push-to-talk: opens the default microphone and streams it to the NPC.
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void StartTalking();

	// Ends push-to-talk; with bEndOfUtterance the NPC answers what it heard.
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void StopTalking(bool bEndOfUtterance = true);

	// Silence the NPC now (its queued audio and lip sync are dropped at once).
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void Interrupt();

	UFUNCTION(BlueprintCallable, Category = "Convai")
	void SendTrigger(const FString& TriggerName, const FString& Message);

	// Tells the character something about the world without a reply (context_update, append).
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void AddContext(const FString& Text);

	// Context update with every option: Mode append/replace/reset, RunLlm whether the character answers,
	// AttentionObject (optional) what it is looking at.
	UFUNCTION(BlueprintCallable, Category = "Convai", meta = (AdvancedDisplay = "AttentionObject"))
	void UpdateContext(const FString& Text, EConvaiContextMode Mode = EConvaiContextMode::Append,
		EConvaiRunLlm RunLlm = EConvaiRunLlm::No, const FString& AttentionObject = TEXT(""));

	// Replaces the character's dynamic information (the weather, the quest state, ...).
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void SetDynamicInfo(const FConvaiDynamicInfo& Info);

	// Replaces the objects the character can see and act on.
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void UpdateScene(const TArray<FConvaiSceneObject>& Objects);

	UFUNCTION(BlueprintCallable, Category = "Convai")
	void SetTemplateKeys(const TMap<FString, FString>& Keys);

	// Voice answers on or off (text keeps coming).
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void SetTtsEnabled(bool bEnabled);

	// Mutes speech recognition without closing the microphone stream.
	UFUNCTION(BlueprintCallable, Category = "Convai")
	void SetSttMuted(bool bMuted);

	UFUNCTION(BlueprintPure, Category = "Convai")
	bool IsSessionReady() const { return bSessionReady; }

	// The conversation's id at Convai (store it to resume later via CharacterSessionId).
	UFUNCTION(BlueprintPure, Category = "Convai")
	FString GetCharacterSessionId() const;

	UFUNCTION(BlueprintPure, Category = "Convai")
	bool IsSpeaking() const { return bSpeaking; }

	UFUNCTION(BlueprintPure, Category = "Convai")
	bool IsTalking() const { return Microphone.IsValid(); }

	// ---- lip sync, for Anim Blueprints (values at the audio playback clock) ----
	// 15 visemes (sil pp ff th dd kk ch ss nn rr aa e ih oh ou) or the blendshape row; empty when silent.
	UPROPERTY(BlueprintReadOnly, Category = "Convai|LipSync")
	TArray<float> LipSyncWeights;

	// The same values by name (viseme names, or ARKit / MetaHuman curve names): feed "Modify Curve".
	UPROPERTY(BlueprintReadOnly, Category = "Convai|LipSync")
	TMap<FName, float> LipSyncCurves;

	UFUNCTION(BlueprintPure, Category = "Convai|LipSync")
	float GetLipSyncCurve(FName Curve) const;

	// ---- events ----
	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiSessionReady OnSessionReady;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiSessionClosed OnSessionClosed;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiTranscript OnTranscript;

	// Streamed chunk of the reply (concatenate per turn for subtitles).
	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiBotText OnBotText;

	// The whole reply of a turn.
	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiBotText OnBotReply;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiActions OnActions;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiEmotion OnEmotion;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiNarrativeSection OnNarrativeSection;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiTurnCompleted OnTurnCompleted;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiSpeakingChanged OnSpeakingChanged;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiModeration OnModeration;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiNoResponse OnNoResponse;

	// The session will close for inactivity unless the player talks.
	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiIdleWarning OnIdleWarning;

	UPROPERTY(BlueprintAssignable, Category = "Convai|Events")
	FConvaiError OnError;

	// Called by the subsystem on the game thread.
	void HandleBridgeMessage(const cvb::Message& Message);

protected:
	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;
	virtual void TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction) override;

private:
	UConvaiBridgeSubsystem* GetBridge() const;
	cvb::msg::SessionOpen BuildSessionConfig() const;
	cvb::ReplyCallback ReportFailures(const TCHAR* What);
	cvb::Client* ReadyClient() const;  // the client when this NPC has a conversation, else nullptr
	void StartVoice();
	void StopVoice();
	void LoadCurveNames();

	UPROPERTY(Transient)
	TObjectPtr<UAudioComponent> VoiceComponent;

	UPROPERTY(Transient)
	TObjectPtr<UConvaiVoiceSoundWave> VoiceWave;

	uint32 NpcId = 0;
	bool bSessionReady = false;
	bool bSpeaking = false;
	std::shared_ptr<cvb::NpcMedia> Media;
	TSharedPtr<FConvaiMicrophone> Microphone;  // shared: deletable with the type incomplete here
	TArray<FName> CurveNames;  // index -> curve name for LipSyncCurves
};

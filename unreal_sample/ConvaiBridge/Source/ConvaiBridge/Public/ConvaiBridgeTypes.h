// Blueprint-facing types of the Convai Bridge plugin.
#pragma once

#include "CoreMinimal.h"

#include "ConvaiBridgeTypes.generated.h"

UENUM(BlueprintType)
enum class EConvaiBackend : uint8
{
	Live        UMETA(ToolTip = "Convai Live (WebRTC): full-duplex voice, interrupt, emotion, lip sync"),
	Interaction UMETA(ToolTip = "REST getResponse: one request per turn (text or push-to-talk audio)"),
	Stream      UMETA(ToolTip = "SSE stream: text only"),
};

UENUM(BlueprintType)
enum class EConvaiLipSync : uint8
{
	None,
	Visemes             UMETA(ToolTip = "15 visemes: sil pp ff th dd kk ch ss nn rr aa e ih oh ou"),
	ArkitBlendshapes    UMETA(ToolTip = "61 ARKit blendshapes (names compiled in: cvb::kArkitBlendshapeNames)"),
	MetaHumanBlendshapes UMETA(ToolTip = "251 MetaHuman face controls (names compiled in: cvb::kMetaHumanBlendshapeNames)"),
};

UENUM(BlueprintType)
enum class EConvaiConnectionState : uint8
{
	Stopped,
	Connecting  UMETA(ToolTip = "No daemon yet (no connection file, or the endpoint does not answer)"),
	Handshaking,
	Ready,
	Failed      UMETA(ToolTip = "The daemon refused this client for good (version mismatch)"),
};

// How a context update treats what the character already knows.
UENUM(BlueprintType)
enum class EConvaiContextMode : uint8
{
	Append,
	Replace,
	Reset,
};

// Whether a context update makes the character answer.
UENUM(BlueprintType)
enum class EConvaiRunLlm : uint8
{
	No    UMETA(DisplayName = "false"),
	Yes   UMETA(DisplayName = "true"),
	Auto,
};

USTRUCT(BlueprintType)
struct FConvaiDynamicInfo
{
	GENERATED_BODY()

	// What the character should know right now ("It is raining.").
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	FString Text;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	FString StaticText;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	bool bKeepInContext = true;
};

USTRUCT(BlueprintType)
struct FConvaiAction
{
	GENERATED_BODY()

	UPROPERTY(BlueprintReadOnly, Category = "Convai")
	FString Name;

	UPROPERTY(BlueprintReadOnly, Category = "Convai")
	FString Target;
};

USTRUCT(BlueprintType)
struct FConvaiSceneObject
{
	GENERATED_BODY()

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	FString Name;

	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "Convai")
	FString Description;
};

DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiConnectionChanged, bool, bConnected, const FString&, Detail);
DECLARE_DYNAMIC_MULTICAST_DELEGATE(FConvaiSessionReady);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FConvaiSessionClosed, const FString&, Reason);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiTranscript, const FString&, Text, bool, bFinal);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiBotText, const FString&, Text, int32, Turn);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiActions, const TArray<FConvaiAction>&, ChosenActions, int32, Turn);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiEmotion, const FString&, Emotion, int32, Scale);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FConvaiNarrativeSection, const FString&, SectionId);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiTurnCompleted, int32, Turn, bool, bInterrupted);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FConvaiSpeakingChanged, bool, bSpeaking);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(FConvaiModeration, int32, Turn, bool, bPassed, const FString&, Reason, const FString&, UserInput);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiNoResponse, int32, Turn, const FString&, Reason);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FConvaiIdleWarning, int32, RemainingSeconds, const FString&, Message);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_ThreeParams(FConvaiError, const FString&, Code, const FString&, Message, bool, bFatal);

#include "ConvaiBridgeSubsystem.h"

#include "ConvaiBridgeLog.h"
#include "ConvaiBridgeSettings.h"
#include "ConvaiNpcComponent.h"
#include "Engine/GameInstance.h"

bool UConvaiBridgeSubsystem::ShouldCreateSubsystem(UObject* Outer) const
{
	if (!Super::ShouldCreateSubsystem(Outer) || IsRunningDedicatedServer())
	{
		return false;
	}
	const UGameInstance* GameInstance = Cast<UGameInstance>(Outer);
	return !(GameInstance && GameInstance->IsDedicatedServerInstance());  // PIE dedicated server too
}

void UConvaiBridgeSubsystem::Initialize(FSubsystemCollectionBase& Collection)
{
	Super::Initialize(Collection);
	if (GetDefault<UConvaiBridgeSettings>()->bConnectOnStart)
	{
		Connect();
	}
}

void UConvaiBridgeSubsystem::Deinitialize()
{
	Disconnect();
	Super::Deinitialize();
}

void UConvaiBridgeSubsystem::Connect()
{
	if (Client)
	{
		return;
	}
	const UConvaiBridgeSettings* Settings = GetDefault<UConvaiBridgeSettings>();
	cvb::ClientOptions Options;
	Options.connection_file = ConvaiToUtf8(GetConnectionFilePath());
	Options.endpoint = ConvaiToUtf8(Settings->Endpoint);
	Options.engine = "unreal";
	Options.request_timeout_ms = FMath::Max(1000, FMath::RoundToInt(Settings->RequestTimeoutSeconds * 1000.0f));
	Options.audio_buffer_ms = FMath::Max(200, Settings->AudioBufferMs);
	Client = std::make_shared<cvb::Client>(Options);
	// Handlers run inside Poll(), i.e. on the game thread, one message at a time.
	Client->SetMessageHandler([this](cvb::NpcId Npc, const cvb::Message& Message) { OnMessage(Npc, Message); });
	Client->SetConnectionHandler([this](const cvb::ConnectionEvent& Event) { OnConnection(Event); });
	Client->SetProblemHandler([](const std::string& What) {
		UE_LOG(LogConvaiBridge, Warning, TEXT("%s"), *ConvaiToFString(What));
	});
	Client->Start();  // returns at once; the network thread connects (and reconnects) by itself
	UE_LOG(LogConvaiBridge, Log, TEXT("connecting via %s"), *ConvaiToFString(Options.connection_file));
}

void UConvaiBridgeSubsystem::Disconnect()
{
	if (!Client)
	{
		return;
	}
	Client->Stop();  // closes the NPC sessions and joins the network thread (bounded: linger 200 ms)
	Client->Poll();  // deliver the final events (replies fail with "stopped")
	Client.reset();
	Npcs.Empty();
}

bool UConvaiBridgeSubsystem::IsConnected() const
{
	return Client && Client->State() == cvb::ConnectionState::Ready;
}

FString UConvaiBridgeSubsystem::GetDaemonInstanceId() const
{
	return Client ? ConvaiToFString(Client->InstanceId()) : FString();
}

EConvaiConnectionState UConvaiBridgeSubsystem::GetConnectionState() const
{
	if (!Client)
	{
		return EConvaiConnectionState::Stopped;
	}
	switch (Client->State())
	{
	case cvb::ConnectionState::Connecting: return EConvaiConnectionState::Connecting;
	case cvb::ConnectionState::Handshaking: return EConvaiConnectionState::Handshaking;
	case cvb::ConnectionState::Ready: return EConvaiConnectionState::Ready;
	case cvb::ConnectionState::Failed: return EConvaiConnectionState::Failed;
	default: return EConvaiConnectionState::Stopped;
	}
}

FString UConvaiBridgeSubsystem::GetConnectionFilePath() const
{
	const FString& Configured = GetDefault<UConvaiBridgeSettings>()->ConnectionFile;
	return Configured.IsEmpty() ? ConvaiToFString(cvb::DefaultConnectionFilePath()) : Configured;
}

uint32 UConvaiBridgeSubsystem::RegisterNpc(UConvaiNpcComponent* Component, cvb::msg::SessionOpen Config)
{
	if (!Client)
	{
		Connect();
	}
	const cvb::NpcId Npc = Client->OpenNpc(std::move(Config)).npc;
	Npcs.Add(Npc, Component);
	return Npc;
}

void UConvaiBridgeSubsystem::UnregisterNpc(uint32 NpcId)
{
	Npcs.Remove(NpcId);
	if (Client && NpcId != 0)
	{
		Client->CloseNpc(NpcId);
	}
}

void UConvaiBridgeSubsystem::Tick(float DeltaTime)
{
	if (Client)
	{
		Client->Poll();  // each queued message is isolated: an exception in one never stops the rest
	}
}

TStatId UConvaiBridgeSubsystem::GetStatId() const
{
	RETURN_QUICK_DECLARE_CYCLE_STAT(UConvaiBridgeSubsystem, STATGROUP_Tickables);
}

void UConvaiBridgeSubsystem::OnMessage(cvb::NpcId Npc, const cvb::Message& Message)
{
	if (const TWeakObjectPtr<UConvaiNpcComponent>* Found = Npcs.Find(Npc))
	{
		if (UConvaiNpcComponent* Component = Found->Get())
		{
			Component->HandleBridgeMessage(Message);
			return;
		}
	}
	if (const cvb::msg::Error* Failure = Message.As<cvb::msg::Error>())
	{
		UE_LOG(LogConvaiBridge, Warning, TEXT("daemon error %s: %s"), *ConvaiToFString(Failure->code),
			*ConvaiToFString(Failure->message));
	}
}

void UConvaiBridgeSubsystem::OnConnection(const cvb::ConnectionEvent& Event)
{
	const bool bReady = Event.state == cvb::ConnectionState::Ready;
	FString Detail = ConvaiToFString(Event.detail);
	if (Event.instance_changed)
	{
		Detail += TEXT(" (daemon restarted: reopening NPC sessions)");
	}
	UE_LOG(LogConvaiBridge, Log, TEXT("connection %s: %s"), UTF8_TO_TCHAR(cvb::ToString(Event.state)), *Detail);
	if (Event.state == cvb::ConnectionState::Failed)
	{
		UE_LOG(LogConvaiBridge, Error, TEXT("the daemon refused this client (%s); update the plugin or the daemon"),
			*ConvaiToFString(Event.error_code));
	}
	OnConnectionChanged.Broadcast(bReady, Detail);
}

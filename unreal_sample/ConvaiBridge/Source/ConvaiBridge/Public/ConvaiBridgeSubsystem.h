// One connection to the convai-bridge daemon per game instance. Owns the engine-free cvb::Client,
// drains its event queue on the game thread every frame (Poll) and routes NPC events to their
// UConvaiNpcComponent. Nothing here blocks the game thread.
#pragma once

#include "CoreMinimal.h"
#include "Subsystems/GameInstanceSubsystem.h"
#include "Tickable.h"

#include <memory>

#include "convai_bridge/client.h"  // engine-free, no msgpack/ZeroMQ headers
#include "ConvaiBridgeTypes.h"

#include "ConvaiBridgeSubsystem.generated.h"

class UConvaiNpcComponent;

UCLASS(Config = Game)
class CONVAIBRIDGE_API UConvaiBridgeSubsystem : public UGameInstanceSubsystem, public FTickableGameObject
{
	GENERATED_BODY()

public:
	// DefaultGame.ini, section [/Script/ConvaiBridge.ConvaiBridgeSubsystem]. Empty: the daemon's
	// default connection file (~/.config/convai-bridge/connection.json, %APPDATA% on Windows).
	UPROPERTY(Config, EditAnywhere, Category = "Convai")
	FString ConnectionFile;

	// Optional overrides of the connection file (e.g. a daemon on another port).
	UPROPERTY(Config, EditAnywhere, Category = "Convai")
	FString Endpoint;

	UPROPERTY(Config, EditAnywhere, Category = "Convai")
	bool bConnectOnStart = true;

	UPROPERTY(BlueprintAssignable, Category = "Convai")
	FConvaiConnectionChanged OnConnectionChanged;

	UFUNCTION(BlueprintCallable, Category = "Convai")
	void Connect();

	UFUNCTION(BlueprintCallable, Category = "Convai")
	void Disconnect();

	UFUNCTION(BlueprintPure, Category = "Convai")
	bool IsConnected() const;

	UFUNCTION(BlueprintPure, Category = "Convai")
	FString GetDaemonInstanceId() const;

	// ---- for UConvaiNpcComponent ----
	uint32 RegisterNpc(UConvaiNpcComponent* Component, cvb::msg::SessionOpen Config);
	void UnregisterNpc(uint32 NpcId);
	cvb::Client* GetClient() const { return Client.get(); }
	std::weak_ptr<cvb::Client> GetClientWeak() const { return Client; }

	// UGameInstanceSubsystem
	virtual void Initialize(FSubsystemCollectionBase& Collection) override;
	virtual void Deinitialize() override;

	// FTickableGameObject: Poll() on the game thread, even while paused (so replies never pile up).
	virtual void Tick(float DeltaTime) override;
	virtual TStatId GetStatId() const override;
	virtual ETickableTickType GetTickableTickType() const override { return ETickableTickType::Conditional; }
	virtual bool IsTickable() const override { return Client != nullptr; }
	virtual bool IsTickableWhenPaused() const override { return true; }
	virtual bool IsTickableInEditor() const override { return false; }

private:
	void OnMessage(cvb::NpcId Npc, const cvb::Message& Message);
	void OnConnection(const cvb::ConnectionEvent& Event);

	std::shared_ptr<cvb::Client> Client;  // shared: microphone capture threads hold weak references
	TMap<uint32, TWeakObjectPtr<UConvaiNpcComponent>> Npcs;
};

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

UCLASS()
class CONVAIBRIDGE_API UConvaiBridgeSubsystem : public UGameInstanceSubsystem, public FTickableGameObject
{
	GENERATED_BODY()

public:
	// Settings: Project Settings > Plugins > Convai Bridge (UConvaiBridgeSettings).

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

	UFUNCTION(BlueprintPure, Category = "Convai")
	EConvaiConnectionState GetConnectionState() const;

	// The connection file this game reads (the setting, or the default rule's path).
	UFUNCTION(BlueprintPure, Category = "Convai")
	FString GetConnectionFilePath() const;

	// ---- for UConvaiNpcComponent ----
	uint32 RegisterNpc(UConvaiNpcComponent* Component, cvb::msg::SessionOpen Config);
	void UnregisterNpc(uint32 NpcId);
	cvb::Client* GetClient() const { return Client.get(); }
	std::weak_ptr<cvb::Client> GetClientWeak() const { return Client; }

	// UGameInstanceSubsystem. No subsystem (and no connection) on dedicated servers: NPC
	// conversations run on the clients, each with its own daemon.
	virtual bool ShouldCreateSubsystem(UObject* Outer) const override;
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

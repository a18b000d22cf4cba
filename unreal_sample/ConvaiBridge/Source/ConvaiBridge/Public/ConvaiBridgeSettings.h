// Project Settings > Plugins > Convai Bridge (DefaultGame.ini, [/Script/ConvaiBridge.ConvaiBridgeSettings]).
#pragma once

#include "CoreMinimal.h"
#include "Engine/DeveloperSettings.h"

#include "ConvaiBridgeSettings.generated.h"

UCLASS(Config = Game, DefaultConfig, meta = (DisplayName = "Convai Bridge"))
class CONVAIBRIDGE_API UConvaiBridgeSettings : public UDeveloperSettings
{
	GENERATED_BODY()

public:
	UConvaiBridgeSettings();

	// Empty: the daemon's default connection file, found by the same rule the daemon writes it by:
	// $CONVAI_BRIDGE_CONNECTION_FILE, else $XDG_CONFIG_HOME/convai-bridge/connection.json (absolute
	// XDG_CONFIG_HOME only), else %APPDATA%\convai-bridge\connection.json on Windows, else
	// ~/.config/convai-bridge/connection.json.
	UPROPERTY(Config, EditAnywhere, Category = "Connection")
	FString ConnectionFile;

	// Overrides the connection file's endpoint (e.g. tcp://127.0.0.1:7301 for a second daemon).
	UPROPERTY(Config, EditAnywhere, Category = "Connection")
	FString Endpoint;

	// Connect when the game instance starts; otherwise call Connect on the subsystem.
	UPROPERTY(Config, EditAnywhere, Category = "Connection")
	bool bConnectOnStart = true;

	// How long a request may wait for the daemon's answer before it fails with "timeout".
	UPROPERTY(Config, EditAnywhere, Category = "Connection", AdvancedDisplay, meta = (ClampMin = "1.0", Units = "s"))
	float RequestTimeoutSeconds = 15.0f;

	// Bot audio buffered per NPC ahead of playback.
	UPROPERTY(Config, EditAnywhere, Category = "Audio", AdvancedDisplay, meta = (ClampMin = "200", Units = "ms"))
	int32 AudioBufferMs = 2000;

	virtual FName GetCategoryName() const override { return TEXT("Plugins"); }
};

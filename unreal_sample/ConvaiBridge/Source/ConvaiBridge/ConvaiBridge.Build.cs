// The thin Unreal layer: subsystem, NPC component, procedural voice, microphone. All protocol logic
// lives in ConvaiBridgeCore (Source/ThirdParty/ConvaiBridgeCore), which links libzmq per platform.
using UnrealBuildTool;

public class ConvaiBridge : ModuleRules
{
	public ConvaiBridge(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;

		PublicDependencyModuleNames.AddRange(new string[]
		{
			"Core",
			"CoreUObject",
			"Engine",
			"ConvaiBridgeCore",
			"DeveloperSettings",  // UConvaiBridgeSettings (Project Settings > Plugins > Convai Bridge)
		});
		PrivateDependencyModuleNames.AddRange(new string[]
		{
			"AudioCaptureCore",  // Audio::FAudioCapture (AudioCapture plugin)
		});
	}
}

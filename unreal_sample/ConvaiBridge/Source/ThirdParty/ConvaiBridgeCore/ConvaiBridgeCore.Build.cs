// The engine-free core (protocol, ZeroMQ client, audio ring, lip-sync clock), compiled by UBT from
// src/ like any module but without Unreal's shared PCH, so CoreMinimal.h and its `check`/`verify`
// macros never reach msgpack-c (see README, "The check macro"). Only ue/ knows about Unreal.
//
// Third-party pieces it needs, per platform, under deps/ (see README, "Dependencies"):
//   deps/include/          zmq.h, zmq.hpp, zmq_addon.hpp (cppzmq), msgpack.hpp + msgpack/ (msgpack-cxx)
//   deps/Win64/lib/        libzmq static library (Scripts/build_libzmq.py, or vcpkg x64-windows-static-md)
//   deps/Mac/lib/          libzmq.a (Scripts/build_libzmq.py: universal; or Homebrew's + libsodium.a)
//   deps/Linux/lib/        libzmq.a built with the UE clang toolchain (Scripts/build_libzmq.py); else the system libzmq.so
//
// Exports: everything ConvaiBridge calls is marked CONVAIBRIDGECORE_API (include/convai_bridge/export.h),
// which UBT defines per module; editor builds are modular with hidden symbols.
using System.IO;
using UnrealBuildTool;

public class ConvaiBridgeCore : ModuleRules
{
	public ConvaiBridgeCore(ReadOnlyTargetRules Target) : base(Target)
	{
		Type = ModuleType.CPlusPlus;
		PCHUsage = PCHUsageMode.NoPCHs;   // no forced CoreMinimal.h: keeps Unreal's macros out of msgpack-c
		bUseUnity = false;
		bEnableExceptions = true;         // msgpack-c reports malformed input by throwing; the core catches it
		bEnableUndefinedIdentifierWarnings = false;  // zmq.h / msgpack test undefined macros in #if (C4668)

		PublicDependencyModuleNames.Add("Core");  // ue/ConvaiBridgeCoreModule.cpp only

		string Deps = Path.Combine(ModuleDirectory, "deps");
		PublicIncludePaths.Add(Path.Combine(ModuleDirectory, "include"));
		PrivateIncludePaths.Add(Path.Combine(ModuleDirectory, "src"));
		PrivateIncludePaths.Add(Path.Combine(Deps, "include"));
		PrivateDefinitions.Add("MSGPACK_NO_BOOST=1");
		PrivateDefinitions.Add("MSGPACK_DISABLE_LEGACY_NIL=1");

		if (Target.Platform == UnrealTargetPlatform.Win64)
		{
			// Static libzmq (no DLL to ship). vcpkg names it libzmq-mt-s-<version>.lib.
			PrivateDefinitions.Add("ZMQ_STATIC=1");
			AddLibraries(Path.Combine(Deps, "Win64", "lib"), "*.lib");
			PublicSystemLibraries.AddRange(new string[] { "ws2_32.lib", "iphlpapi.lib", "advapi32.lib" });
		}
		else if (Target.Platform == UnrealTargetPlatform.Mac)
		{
			PrivateDefinitions.Add("ZMQ_STATIC=1");
			AddLibraries(Path.Combine(Deps, "Mac", "lib"), "*.a");
		}
		else if (Target.Platform == UnrealTargetPlatform.Linux)
		{
			// UE links Linux modules against its bundled libc++. libzmq is C++ inside, so a static
			// libzmq.a must be built with the UE toolchain; the distribution's shared libzmq.so only
			// exposes a C ABI and links fine.
			string LinuxLib = Path.Combine(Deps, "Linux", "lib");
			if (Directory.Exists(LinuxLib) && Directory.GetFiles(LinuxLib, "*.a").Length > 0)
			{
				PrivateDefinitions.Add("ZMQ_STATIC=1");  // Scripts/build_libzmq.py: static, hidden symbols
				AddLibraries(LinuxLib, "*.a");
			}
			else
			{
				PublicSystemLibraries.Add("zmq");
			}
		}
		else
		{
			throw new BuildException("ConvaiBridge supports Win64, Mac and Linux only: the convai-bridge daemon is a " +
				"desktop sidecar process. Consoles and mobile need a server-side route instead.");
		}
	}

	private void AddLibraries(string Directory_, string Pattern)
	{
		if (!Directory.Exists(Directory_))
		{
			throw new BuildException("ConvaiBridgeCore: " + Directory_ + " is missing; see the plugin README (Dependencies).");
		}
		foreach (string Lib in Directory.GetFiles(Directory_, Pattern))
		{
			PublicAdditionalLibraries.Add(Lib);
		}
	}
}

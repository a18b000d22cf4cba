// CONVAIBRIDGECORE_API marks what the core exports across a module boundary.
//
// UnrealBuildTool defines <MODULE>_API for every module: DLLEXPORT while compiling ConvaiBridgeCore,
// DLLIMPORT in modules that depend on it (ConvaiBridge), empty in monolithic builds (packaged games).
// Editor builds are modular: each module is its own DLL / .so compiled with hidden visibility
// (-fvisibility-ms-compat on clang), so anything not marked here cannot be linked from ConvaiBridge.
// The core never includes Unreal headers, so DLLEXPORT / DLLIMPORT (from HAL/Platform.h) may be
// unknown here: they are supplied with the same spelling Unreal uses. Standalone (CMake) builds get
// an empty macro unless they define it (unreal_sample/CMakeLists.txt does, the way UBT does).
#pragma once

#if defined(CONVAIBRIDGECORE_API)
#if !defined(DLLEXPORT)
#if defined(_WIN32)
#define DLLEXPORT __declspec(dllexport)
#define DLLIMPORT __declspec(dllimport)
#else
#define DLLEXPORT __attribute__((visibility("default")))
#define DLLIMPORT __attribute__((visibility("default")))
#endif
#endif
#else
#define CONVAIBRIDGECORE_API
#endif

// Exported classes hold std:: members (unique_ptr, mutex, vector); both sides use the same C++
// runtime (the engine's), so MSVC's "needs dll-interface" warning (C4251) says nothing useful.
#if defined(_MSC_VER)
#define CVB_SUPPRESS_DLL_INTERFACE_WARNING __pragma(warning(push)) __pragma(warning(disable : 4251))
#define CVB_RESTORE_DLL_INTERFACE_WARNING __pragma(warning(pop))
#else
#define CVB_SUPPRESS_DLL_INTERFACE_WARNING
#define CVB_RESTORE_DLL_INTERFACE_WARNING
#endif

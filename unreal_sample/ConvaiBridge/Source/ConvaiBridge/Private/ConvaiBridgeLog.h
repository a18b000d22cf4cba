#pragma once

#include "CoreMinimal.h"

#include <string>

DECLARE_LOG_CATEGORY_EXTERN(LogConvaiBridge, Log, All);

// The core speaks UTF-8 std::string; Unreal speaks FString.
inline FString ConvaiToFString(const std::string& Utf8)
{
	return FString(UTF8_TO_TCHAR(Utf8.c_str()));
}

inline std::string ConvaiToUtf8(const FString& Text)
{
	return std::string(TCHAR_TO_UTF8(*Text));
}

#include "ConvaiBridgeSettings.h"

UConvaiBridgeSettings::UConvaiBridgeSettings()
{
	CategoryName = TEXT("Plugins");
	SectionName = TEXT("Convai Bridge");
}

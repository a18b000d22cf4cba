#include "ConvaiBridgeLog.h"
#include "Modules/ModuleManager.h"

DEFINE_LOG_CATEGORY(LogConvaiBridge);

IMPLEMENT_MODULE(FDefaultModuleImpl, ConvaiBridge)

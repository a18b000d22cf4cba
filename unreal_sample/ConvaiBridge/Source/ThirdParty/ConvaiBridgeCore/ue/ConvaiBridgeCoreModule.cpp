// The only Unreal-aware file of the core module: UBT wants every module to implement one. It does
// not include msgpack or ZeroMQ, so Unreal's macros here are harmless. CMake builds skip ue/.
#include "Modules/ModuleManager.h"

IMPLEMENT_MODULE(FDefaultModuleImpl, ConvaiBridgeCore)

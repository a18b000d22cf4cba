// Stand-in for the engine header of this name: see ue_stub.h.
#pragma once
#include "ue_stub.h"

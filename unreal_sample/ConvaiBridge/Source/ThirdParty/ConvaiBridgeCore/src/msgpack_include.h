// The only way the core includes msgpack-c. Unreal defines function-like macros named `check` and
// `verify` (and Windows.h defines `min`/`max`); msgpack-c declares members named `check`
// (msgpack/v1/object_fwd.hpp) and uses std::min/max. When this file is compiled inside an Unreal
// module whose shared PCH force-includes CoreMinimal.h, those macros would expand inside msgpack-c
// and break the build, so they are saved, removed and restored around the include.
#pragma once

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST 1  // header-only msgpack-cxx without Boost
#endif
#ifndef MSGPACK_DISABLE_LEGACY_NIL
#define MSGPACK_DISABLE_LEGACY_NIL 1  // no msgpack::type::nil (clashes with Objective-C's nil on Mac)
#endif

#pragma push_macro("check")
#pragma push_macro("verify")
#pragma push_macro("min")
#pragma push_macro("max")
#undef check
#undef verify
#undef min
#undef max

#include <msgpack.hpp>

#pragma pop_macro("max")
#pragma pop_macro("min")
#pragma pop_macro("verify")
#pragma pop_macro("check")

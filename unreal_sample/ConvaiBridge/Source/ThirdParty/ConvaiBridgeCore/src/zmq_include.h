// The only way the core includes ZeroMQ (cppzmq over libzmq). On Windows zmq.h pulls in
// winsock2.h, whose min/max macros break std::min/std::max unless NOMINMAX is set first; Unreal's
// check/verify macros are kept out for the same reason as in msgpack_include.h.
#pragma once

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#endif

#pragma push_macro("check")
#pragma push_macro("verify")
#undef check
#undef verify

#include <zmq.hpp>
#include <zmq_addon.hpp>

#pragma pop_macro("verify")
#pragma pop_macro("check")

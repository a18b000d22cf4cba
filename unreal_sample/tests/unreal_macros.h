// Stand-ins for the function-like macros Unreal's CoreMinimal.h defines, to prove the core compiles
// with them in scope (as it would inside a module using Unreal's shared PCH). Without the guard in
// src/msgpack_include.h, msgpack-c fails to compile right here.
#pragma once
#define check(expr) do { if (!(expr)) __builtin_trap(); } while (0)
#define verify(expr) do { if (!(expr)) __builtin_trap(); } while (0)
#define ensure(expr) (!!(expr))

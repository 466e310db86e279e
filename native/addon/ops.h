// ops.h: the kernel bindings the addon exports; each lives in the file of its op's stem.
#pragma once
#include <napi.h>

namespace mk {

Napi::Value Matmul(const Napi::CallbackInfo& info);

}  // namespace mk

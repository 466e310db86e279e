// checks.h: argument preconditions for the Node-API binding, one per line. Each failure throws
// a JS TypeError (wrong kind of value) or RangeError (right kind, wrong size or value) whose
// message starts with the op and names the argument.
#pragma once
#include <napi.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace mk {

template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

std::string shape_str(const std::vector<int64_t>& shape);
std::string describe_value(const Napi::Value& v);  // "number 3", "undefined", "Float64Array"

}  // namespace mk

#define MK_TYPE_CHECK(cond, ...) \
  if (!(cond)) throw Napi::TypeError::New(env, ::mk::cat(__VA_ARGS__))
#define MK_RANGE_CHECK(cond, ...) \
  if (!(cond)) throw Napi::RangeError::New(env, ::mk::cat(__VA_ARGS__))

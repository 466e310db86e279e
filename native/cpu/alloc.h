// alloc.h: the CPU backend's memory (alloc.cpp): 64-byte aligned host blocks, the large ones
// (≥ 1 MiB) on transparent huge pages and kept in a cache of freed blocks for the next request
// of the same size; and the counts behind memoryStats and the external memory V8 is told of.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mk {

// A block of `bytes`, or nullptr with the reason in *why.
void* host_alloc(size_t bytes, std::string* why);
void host_free(void* p);
// Bytes held from the OS (live blocks, the cache, malloc headers); bytes in live blocks; their
// peak since the last reset (reset: restart it from now).
int64_t host_footprint();
int64_t host_live();
int64_t host_peak(bool reset);

}  // namespace mk

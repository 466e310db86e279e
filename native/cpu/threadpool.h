// threadpool.h: the CPU backend's persistent worker pool, sized to the CPUs this process may
// run on (MAMAKIT_NUM_THREADS overrides). Workers spin briefly before sleeping, so the
// back-to-back calls of a training step do not pay a wake-up each.
#pragma once
#include <cstdint>
#include <type_traits>

namespace mk {

// Calls fn(task, thread) for every task in [0, n); the calling thread works too and the call
// returns when all tasks are done. `thread` is in [0, threads()) and is stable for the call,
// so it can index per-thread scratch. Re-entrant calls (from inside a task, or from a second
// JS thread while the pool is busy) run serially on the caller.
void parallel_for(int64_t n, void (*fn)(void* arg, int64_t task, int thread), void* arg);

template <class F>
void parallel_for(int64_t n, F&& f) {
  parallel_for(
      n, [](void* arg, int64_t task, int thread) { (*static_cast<std::remove_reference_t<F>*>(arg))(task, thread); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

int threads();

// Splits [0, n) into contiguous chunks of at least `grain` items, at most 4 per thread, and
// calls f(begin, end, chunk) for each in parallel; returns the number of chunks (chunk < that).
// The number of chunks parallel_chunks(n, grain, ...) uses (to size per-chunk buffers): at
// least `grain` items each, at most 4 per thread.
inline int64_t chunk_count(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  const int64_t chunks = (n + grain - 1) / (grain < 1 ? 1 : grain);
  const int64_t most = 4 * int64_t(threads());
  return chunks > most ? most : chunks < 1 ? 1 : chunks;
}

// Splits [0, n) into chunk_count(n, grain) contiguous chunks and calls f(begin, end, chunk)
// for each in parallel; returns the number of chunks.
template <class F>
int64_t parallel_chunks(int64_t n, int64_t grain, F&& f) {
  const int64_t chunks = chunk_count(n, grain);
  if (chunks == 0) return 0;
  parallel_for(chunks, [&](int64_t c, int) { f(c * n / chunks, (c + 1) * n / chunks, c); });
  return chunks;
}

}  // namespace mk

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

}  // namespace mk

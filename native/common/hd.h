// hd.h: MK_HD marks a function that both backends compile: host code in native/cpu, host and
// device code under nvcc (the emulated CUDA library compiles .cu files as plain C++).
#pragma once

#if defined(__CUDACC__)
#define MK_HD __host__ __device__
#else
#define MK_HD
#endif

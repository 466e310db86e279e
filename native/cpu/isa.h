// isa.h: the instruction set the CPU kernels use, chosen once at load from cpuid (never from
// the build machine's flags). MAMAKIT_ISA=avx512|avx2|scalar lowers it for testing.
#pragma once

namespace mk {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

Isa isa();                 // the ISA in use
Isa best_isa();            // the best this CPU and OS support
bool set_isa(Isa wanted);  // false when the CPU cannot run it
const char* isa_name(Isa i);

}  // namespace mk

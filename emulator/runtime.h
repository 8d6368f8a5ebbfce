// Internal interfaces of the stand-in driver, shared by driver.cpp (the cu* entry points),
// memory.cpp (guarded device allocations, range checks, the fault handler), executor.cpp
// (blocks as fibers, barrier and order checks) and fiber.cpp (the context switch).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "cuda_emu.h"

namespace emu {

// The CUresult values the stand-in returns (cuda.h).
enum Result : int {
    SUCCESS = 0,
    ERROR_INVALID_VALUE = 1,
    ERROR_OUT_OF_MEMORY = 2,
    ERROR_NOT_INITIALIZED = 3,
    ERROR_INVALID_DEVICE = 101,
    ERROR_INVALID_IMAGE = 200,
    ERROR_INVALID_CONTEXT = 201,
    ERROR_NO_BINARY_FOR_GPU = 209,
    ERROR_INVALID_HANDLE = 400,
    ERROR_NOT_FOUND = 500,
    ERROR_LAUNCH_FAILED = 719,
    ERROR_NOT_SUPPORTED = 801,
};

// Every diagnostic goes to stderr with this prefix, so a failing test's log says which side
// (the stand-in, not the GPU code) found the problem.
void report(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// ---- device memory (memory.cpp) ------------------------------------------------------------

struct Allocation {
    uintptr_t ptr;   // first byte handed out
    size_t size;     // bytes handed out; ptr + size is the first byte of the guard page
    char* map;       // the whole mapping: [guard][slack filled with CANARY][data][guard]
    size_t map_len;
    uint64_t id;     // 1, 2, ... in allocation order, to name it in messages
};

Result mem_alloc(uintptr_t* out, size_t size);
Result mem_free(uintptr_t p);
// The live allocation holding byte p, or null.
const Allocation* find_live(uintptr_t p);
// A live allocation holding [p, p + n), or null after reporting why not (`what` names the call
// and operand, e.g. "cuMemcpyHtoDAsync destination").
const Allocation* check_range(const char* what, uintptr_t p, size_t n);
// Says what address p is (inside, past the end of or before an allocation, freed, ...).
std::string describe_address(uintptr_t p);
// False (after reporting) when something wrote into the slack before the allocation's start.
bool canary_intact(const Allocation& a, const char* kernel);

// A mapping of `bytes` usable bytes ending exactly at a PROT_NONE page, for dynamic shared
// memory and fiber stacks; `guard_below` puts the guard page before them instead (stacks grow
// down). Returns the first usable byte; aborts when the system refuses the memory.
char* map_guarded(size_t bytes, bool guard_below);

// Installs the SIGSEGV/SIGBUS handler that names the kernel, block and thread of a bad access.
void install_fault_handler();
// Gives the calling OS thread an alternate signal stack of 64 KiB for that handler.
void ensure_signal_stack();

// ---- kernel execution (executor.cpp) --------------------------------------------------------

struct LaunchConfig {
    dim3 grid, block;
    size_t shared_bytes;
};

// Runs a kernel to completion on the calling thread, after checking its pointer arguments;
// under ALPHANET_EMULATOR_ORDER_CHECK=1 runs it twice (forward, reversed) and compares.
Result launch(const KernelInfo& k, const LaunchConfig& cfg, void* const* params);

// "kernel K, block (x,y,z), thread (x,y,z)" of the fiber running on the calling OS thread; false
// when no kernel runs on it (the fault handler then passes the signal on).
bool describe_running_thread(char* buf, size_t n);

// What p is when it is the guard page of the dynamic shared memory or of a fiber stack; empty
// otherwise.
std::string describe_executor_address(uintptr_t p);

// ALPHANET_EMULATOR_ORDER_CHECK=1, read once by cuInit.
extern bool order_check;

// ---- fibers (fiber.cpp) ---------------------------------------------------------------------

// Fiber stacks ("slots"), each started at an entry function and switched to and from the
// scheduler (the stack of the thread that called cuLaunchKernel).
class Fibers {
   public:
    // Starts a fiber on stack `slot` (mapped on first use) at entry(): the next resume(slot)
    // enters it. A slot whose fiber has ended can be prepared again.
    void prepare(size_t slot, void (*entry)());
    // Runs the fiber on `slot` until it calls yield().
    void resume(size_t slot);
    // From inside a fiber: back to the scheduler; returns when the fiber is resumed.
    static void yield();
    // Whether p is in the guard page below one of the stacks (a stack overflow).
    bool is_stack_guard(uintptr_t p) const;

   private:
    struct Stack;
    // Each Stack stays where it was allocated: a saved ucontext_t may point into itself.
    std::vector<Stack*> stacks_;
};

}  // namespace emu

// Fibers: stacks for the threads of a block, switched on one OS thread. On x86-64 a switch saves
// and restores only what the System V ABI makes callee-saved (rbx, rbp, r12-r15) plus rsp: the
// switch is an ordinary function call to the compiler, so every other register is already
// dead. glibc's swapcontext also saves the signal mask with a system call per switch, which
// cost most of the time in a prototype; it remains the portable fallback for other targets.
// (mxcsr and the x87 control word are callee-saved too, but no kernel changes them.)
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu {

// 64 KiB per fiber: the kernels keep a few scalars and small arrays per thread; an overflow
// hits the guard page below and is reported as such.
static constexpr size_t STACK_BYTES = 64 * 1024;

#if defined(__x86_64__)

extern "C" void emu_context_switch(void** save_sp, void* load_sp);
extern "C" void emu_fiber_start();

// emu_context_switch pushes the callee-saved registers on the current stack, stores rsp in
// *save_sp, loads load_sp and pops the same registers from the other stack. A new fiber's stack
// is prepared (Fibers::start) as if it had been switched away from just before
// emu_fiber_start, with the entry function in r13.
asm(R"(
    .text
    .globl emu_context_switch
    .hidden emu_context_switch
    .type emu_context_switch, @function
emu_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_context_switch, .-emu_context_switch

    .globl emu_fiber_start
    .hidden emu_fiber_start
    .type emu_fiber_start, @function
emu_fiber_start:
    callq *%r13
    ud2
    .size emu_fiber_start, .-emu_fiber_start
)");

struct Fibers::Stack {
    char* base;  // lowest usable byte; the guard page is just below
    void* sp;    // saved rsp while the fiber is switched out
};

// One scheduler in the process: launches run one at a time (the driver's mutex).
static void* scheduler_sp;
static void** running_sp;

void Fibers::resume(size_t i) {
    running_sp = &stacks_[i]->sp;
    emu_context_switch(&scheduler_sp, stacks_[i]->sp);
}

void Fibers::yield() { emu_context_switch(running_sp, scheduler_sp); }

#else

struct Fibers::Stack {
    char* base;
    ucontext_t ctx;
};

static ucontext_t scheduler_ctx;
static ucontext_t* running_ctx;

void Fibers::resume(size_t i) {
    running_ctx = &stacks_[i]->ctx;
    swapcontext(&scheduler_ctx, running_ctx);
}

void Fibers::yield() { swapcontext(running_ctx, &scheduler_ctx); }

#endif

void Fibers::prepare(size_t slot, void (*entry)()) {
    while (stacks_.size() <= slot) stacks_.push_back(new Stack{map_guarded(STACK_BYTES, true), {}});
    Stack& s = *stacks_[slot];
#if defined(__x86_64__)
    // Seven words from a 16-byte aligned top minus 72: r15, r14, r13 = entry, r12, rbx, rbp,
    // return address = emu_fiber_start. After the `ret`, rsp = top − 16 is 16-byte aligned, so
    // emu_fiber_start's call enters `entry` with the ABI's alignment.
    uintptr_t* frame = reinterpret_cast<uintptr_t*>(s.base + STACK_BYTES - 72);
    frame[0] = frame[1] = frame[3] = frame[4] = frame[5] = 0;
    frame[2] = reinterpret_cast<uintptr_t>(entry);
    frame[6] = reinterpret_cast<uintptr_t>(&emu_fiber_start);
    s.sp = frame;
#else
    getcontext(&s.ctx);
    s.ctx.uc_stack.ss_sp = s.base;
    s.ctx.uc_stack.ss_size = STACK_BYTES;
    s.ctx.uc_link = nullptr;
    makecontext(&s.ctx, entry, 0);
#endif
}

bool Fibers::is_stack_guard(uintptr_t p) const {
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    for (const Stack* s : stacks_) {
        uintptr_t base = reinterpret_cast<uintptr_t>(s->base);
        if (p >= base - page && p < base) return true;
    }
    return false;
}

}  // namespace emu

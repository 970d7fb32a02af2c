/*
 * uml_xstate_shim.c: an LD_PRELOAD library for Debian's linux.uml (user-mode-linux) that lets the
 * guest kernel run on hosts whose XSAVE area is larger than UML's own FPU buffer.
 *
 * Why: UML keeps each guest process's FPU state in a buffer of a fixed size and moves it with
 * PTRACE_GETREGSET / PTRACE_SETREGSET (NT_X86_XSTATE). Since Linux 5.16 the host kernel refuses a
 * SETREGSET whose length is not exactly its whole user XSAVE size (arch/x86/kernel/fpu/regset.c,
 * xstateregs_set: `count != fpu_user_cfg.max_size` -> -EFAULT), while a short GETREGSET still
 * succeeds (it truncates). On a CPU with AMX the XSAVE area holds the 8 KiB tile data (about 11 KiB
 * in all), more than UML's buffer, so the guest's first process dies with "ptrace set fp regs
 * failed, errno = 14" and the guest panics ("Attempted to kill init!").
 *
 * What: for a SETREGSET of NT_X86_XSTATE whose buffer is shorter than the thread's whole XSAVE area,
 * read the whole area first (GETREGSET into a buffer large enough for any host), lay UML's bytes
 * over its start (the legacy area, the XSAVE header and every component UML knows), and write the
 * whole area back. Components past UML's buffer (AMX tiles) keep the values the thread already had;
 * a UML guest process never uses them. Everything else goes to libc's ptrace unchanged.
 *
 * The buffer is static, not on the stack: UML calls ptrace on its small kernel stacks (a 64 KiB local
 * array crashed the guest, "Segfault with no mm"). A spin lock serialises the rare concurrent caller.
 *
 * Written for fipsike (Apache-2.0); no code from UML or the kernel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Far above any x86 XSAVE area so far (AMX: about 11 KiB); the kernel clips a GETREGSET to its size. */
static unsigned char whole[256 * 1024] __attribute__((aligned(64)));
static volatile int busy;

typedef long (*ptrace_fn)(enum __ptrace_request, ...);

static ptrace_fn next_ptrace(void) {
    static ptrace_fn fn;
    if (!fn) fn = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    return fn;
}

long ptrace(enum __ptrace_request request, ...) {
    va_list ap;
    va_start(ap, request);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);
    ptrace_fn real = next_ptrace();
    if (!real) { errno = ENOSYS; return -1; }

    if (request == PTRACE_SETREGSET && (unsigned long)addr == NT_X86_XSTATE && data != NULL) {
        struct iovec *mine = (struct iovec *)data;
        while (__atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE)) { }
        struct iovec full = { whole, sizeof whole };
        long rc;
        if (real(PTRACE_GETREGSET, pid, addr, &full) == 0 && full.iov_len > mine->iov_len) {
            memcpy(whole, mine->iov_base, mine->iov_len);
            rc = real(PTRACE_SETREGSET, pid, addr, &full);
        } else {
            rc = real(PTRACE_SETREGSET, pid, addr, data);
        }
        int saved = errno;
        __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
        errno = saved;
        return rc;
    }
    return real(request, pid, addr, data);
}

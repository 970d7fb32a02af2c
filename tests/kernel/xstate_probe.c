/* Reproduces, on any x86-64 host, the ptrace call that kills user-mode-linux on AMX hosts: a
 * PTRACE_SETREGSET of NT_X86_XSTATE with a buffer shorter than the host's XSAVE area (UML's buffer is
 * fixed; an AMX host's area is larger). It sets XMM0 through the short buffer and reads it back.
 * Prints: "size=<whole XSAVE size> short=<bytes> set=<rc> errno=<errno> roundtrip=<0|1>". */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#define XMM0 160      /* offset of XMM0 in the legacy FXSAVE area */
#define XSTATE_BV 512 /* the XSAVE header's first field */

static unsigned char whole[256 * 1024] __attribute__((aligned(64)));
static unsigned char part[576] __attribute__((aligned(64)));

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    struct iovec w = { whole, sizeof whole };
    if (ptrace(PTRACE_GETREGSET, child, (void *)NT_X86_XSTATE, &w) != 0) { perror("getregset"); return 2; }
    size_t size = w.iov_len;
    struct iovec p = { part, sizeof part };
    if (ptrace(PTRACE_GETREGSET, child, (void *)NT_X86_XSTATE, &p) != 0) { perror("getregset short"); return 2; }
    for (int i = 0; i < 16; i++) part[XMM0 + i] = (unsigned char)(0xA0 + i);
    part[XSTATE_BV] |= 0x2; /* SSE state present */
    errno = 0;
    long rc = ptrace(PTRACE_SETREGSET, child, (void *)NT_X86_XSTATE, &p);
    int err = errno;
    memset(whole, 0, sizeof whole);
    w.iov_len = sizeof whole;
    ptrace(PTRACE_GETREGSET, child, (void *)NT_X86_XSTATE, &w);
    int same = 1;
    for (int i = 0; i < 16; i++) same &= whole[XMM0 + i] == (unsigned char)(0xA0 + i);
    printf("size=%zu short=%zu set=%ld errno=%d roundtrip=%d\n", size, p.iov_len, rc, err, same);
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
    return 0;
}

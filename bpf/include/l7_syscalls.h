/* Which system call moved a socket's bytes, told from the calling thread's saved user registers:
 * the L7 programs hook the sockets' own send/receive tracepoints (which fire for sockets only and
 * leave other system calls on their fast path) and learn the user buffer from the registers the
 * call was made with. The numbers are each architecture's native ABI; a 32-bit process's calls do
 * not match (they are not observed). */
#ifndef EA_BPF_L7_SYSCALLS_H
#define EA_BPF_L7_SYSCALLS_H

#if defined(__TARGET_ARCH_x86)
#define L7_NR_READ 0
#define L7_NR_WRITE 1
#define L7_NR_READV 19
#define L7_NR_WRITEV 20
#define L7_NR_SENDTO 44
#define L7_NR_RECVFROM 45
#define L7_NR_SENDMSG 46
#define L7_NR_RECVMSG 47
/* Loaded directly (the registers come from bpf_task_pt_regs, a typed kernel pointer). */
#define L7_SYSCALL_NR(regs) ((regs)->orig_ax)
#define L7_SYSCALL_ARG1(regs) ((regs)->di)
#define L7_SYSCALL_ARG2(regs) ((regs)->si)
#define L7_SYSCALL_ARG3(regs) ((regs)->dx)
#elif defined(__TARGET_ARCH_arm64)
#define L7_NR_READ 63
#define L7_NR_WRITE 64
#define L7_NR_READV 65
#define L7_NR_WRITEV 66
#define L7_NR_SENDTO 206
#define L7_NR_RECVFROM 207
#define L7_NR_SENDMSG 211
#define L7_NR_RECVMSG 212
struct pt_regs___l7_arm64 {
  __u64 regs[31];
  __u64 orig_x0;
  __s32 syscallno;
} __attribute__((preserve_access_index));
#define L7_SYSCALL_NR(regs) (((struct pt_regs___l7_arm64 *)(regs))->syscallno)
#define L7_SYSCALL_ARG1(regs) (((struct pt_regs___l7_arm64 *)(regs))->orig_x0)
#define L7_SYSCALL_ARG2(regs) (((struct pt_regs___l7_arm64 *)(regs))->regs[1])
#define L7_SYSCALL_ARG3(regs) (((struct pt_regs___l7_arm64 *)(regs))->regs[2])
#else
#error "l7: the socket system call numbers of this architecture are not known (bpf/include/l7_syscalls.h)"
#endif

#endif /* EA_BPF_L7_SYSCALLS_H */

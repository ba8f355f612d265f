// The one symbol table for libc, opened lazily on first use and memoised, so
// importing any module of the package needs no permission and loads nothing.

const SYMBOLS = {
  // int socket(int domain, int type, int protocol)
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2])
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int bind(int fd, const struct sockaddr *addr, socklen_t len)
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int fd, int backlog)
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int connect(int fd, const struct sockaddr *addr, socklen_t len)
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // ssize_t sendto(int fd, const void *buf, size_t len, int flags,
  //                const struct sockaddr *to, socklen_t tolen)
  // (ssize_t results are declared i32: every length here is below 2^31, and
  // -1 keeps its value, while an i32 comes back as a number, not a bigint.)
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  // ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // ssize_t recv(int fd, void *buf, size_t len, int flags)
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
  //              struct timespec *timeout)
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  // int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  // int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int shutdown(int fd, int how)
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // int close(int fd)
  close: { parameters: ["i32"], result: "i32" },
  // int epoll_create1(int flags)
  epoll_create1: { parameters: ["i32"], result: "i32" },
  // int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
  // The only call that may block, so the only one run off the JS thread.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  // The same call, synchronous, with timeout 0 only: the io_uring doorbell
  // drains the set on the JS thread once told it is ready.
  epoll_wait_now: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  // long syscall(SYS_io_uring_setup, unsigned entries, struct io_uring_params *p)
  io_uring_setup: { name: "syscall", parameters: ["i64", "u32", "buffer"], result: "i32" },
  // long syscall(SYS_io_uring_enter, int fd, unsigned to_submit,
  //              unsigned min_complete, unsigned flags, sigset_t *sig, size_t sigsz)
  io_uring_enter: {
    name: "syscall",
    parameters: ["i64", "i32", "u32", "u32", "u32", "pointer", "usize"],
    result: "i32",
  },
  // long syscall(SYS_io_uring_register, int fd, unsigned opcode, void *arg, unsigned nr_args)
  io_uring_register: {
    name: "syscall",
    parameters: ["i64", "i32", "u32", "buffer", "u32"],
    result: "i32",
  },
  // int eventfd(unsigned int initval, int flags)
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // ssize_t write(int fd, const void *buf, size_t count)
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count)
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // unsigned int if_nametoindex(const char *ifname)
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  // char *if_indextoname(unsigned int ifindex, char *ifname)
  if_indextoname: { parameters: ["u32", "buffer"], result: "pointer" },
  // void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  // int munmap(void *addr, size_t len)
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int fcntl(int fd, int cmd, int arg): F_GETFD/F_SETFD/F_GETFL/F_SETFL
  // (variadic in C; an int argument passes the same way on x86_64 and aarch64)
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int memfd_create(const char *name, unsigned int flags)
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  // int clock_gettime(clockid_t clock, struct timespec *ts)
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  // int sched_yield(void)
  sched_yield: { parameters: [], result: "i32" },
  // int *__errno_location(void): errno of the calling (JS) thread
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound libc functions. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * Opens libc on first use. Throws `NotSupported` off Linux and `NotCapable`
 * naming `--allow-ffi` when FFI is not permitted.
 */
export function libc(): Libc {
  if (lib) return lib;
  if (Deno.build.os !== "linux") {
    throw new Deno.errors.NotSupported(
      `FFI socket types are supported on Linux only, not on ${Deno.build.os}`,
    );
  }
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    throw new Deno.errors.NotCapable(
      "Requires ffi access to open this socket type, run again with the --allow-ffi flag",
    );
  }
  lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  errnoView = new Deno.UnsafePointerView(lib.__errno_location()!);
  return lib;
}

/**
 * errno of the last synchronous call on this thread. Read it right after the
 * call it belongs to: a nonblocking call's errno is another thread's.
 */
export function errno(): number {
  return errnoView!.getInt32();
}

/*
 * epollbench: the C references for bench/scale_bench.ts, many seqpacket
 * sockets on one epoll instance in one thread.
 *
 *   epollbench idle N [-d SEC]
 *       N socketpairs, both ends of each in the epoll set waiting for input
 *       (what a pending receive on every socket is in C); reports VmRSS and
 *       Threads from /proc/self/status before and after, and the CPU
 *       (getrusage) used over SEC seconds (default 1) of epoll_wait.
 *   epollbench server PATH -k K [-t SEC]
 *       Listens on PATH and echoes every record on every connection; exits
 *       once K connections were accepted and all of them closed.
 *   epollbench client PATH -k K [-w MS] [-d SEC] [-s BYTES]
 *       K connections to PATH, each with one record of BYTES (default 64) in
 *       flight: a reply is checked and the record sent again. Counts the
 *       round trips completed in SEC seconds (default 1) after MS ms
 *       (default 200) of warm-up, and the client's CPU per round trip.
 *
 * Protocol as bench/c/sockbench.c: one "ready" line, then one JSON line
 * (with "error" and exit status 1 on failure).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 1024
#define MAX_SIZE 65536

static const char *role = "?";

static void fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "epollbench %s: %s\n", role, msg);
  printf("{\"role\":\"%s\",\"error\":\"", role);
  for (const char *p = msg; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    putchar((unsigned char)*p < 0x20 ? ' ' : *p);
  }
  printf("\"}\n");
  fflush(stdout);
  exit(1);
}

static void fail_errno(const char *call) { fail("%s: %s", call, strerror(errno)); }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A field of /proc/self/status ("VmRSS" in kB, "Threads"). */
static long status_field(const char *name) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) fail_errno("open /proc/self/status");
  char line[256];
  size_t len = strlen(name);
  long value = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, name, len) == 0 && line[len] == ':') {
      value = strtol(line + len + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return value;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void watch(int ep, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) fail_errno("epoll_ctl");
}

static void unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len) {
  memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof un->sun_path) fail("address \"%s\": path must be 1 to 107 bytes", path);
  memcpy(un->sun_path, path, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

static void idle(long n, double seconds) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail_errno("epoll_create1");
  printf("ready\n");
  fflush(stdout);
  long rss0 = status_field("VmRSS"), threads0 = status_field("Threads");
  int *fds = malloc(sizeof(int) * 2 * (size_t)n);
  if (!fds) fail("out of memory");
  for (long i = 0; i < n; i++) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds + 2 * i) != 0)
      fail_errno("socketpair");
    watch(ep, fds[2 * i], EPOLLIN);
    watch(ep, fds[2 * i + 1], EPOLLIN);
  }
  long rss1 = status_field("VmRSS"), threads1 = status_field("Threads");
  struct epoll_event events[MAX_EVENTS];
  double c0 = cpu_s(), t0 = now_s(), deadline = t0 + seconds;
  long wakeups = 0;
  for (double t = t0; t < deadline; t = now_s()) {
    int ms = (int)((deadline - t) * 1000) + 1;
    int got = epoll_wait(ep, events, MAX_EVENTS, ms);
    if (got < 0 && errno != EINTR) fail_errno("epoll_wait");
    if (got > 0) wakeups += got;
  }
  double c1 = cpu_s(), t1 = now_s();
  for (long i = 0; i < 2 * n; i++) close(fds[i]);
  free(fds);
  printf("{\"role\":\"idle\",\"n\":%ld,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,"
         "\"threads_before\":%ld,\"threads_after\":%ld,\"cpu_us\":%.1f,\"idle_s\":%.3f,"
         "\"wakeups\":%ld}\n",
         n, rss0, rss1, threads0, threads1, (c1 - c0) * 1e6, t1 - t0, wakeups);
}

static void server(const char *path, long k, double timeout) {
  struct sockaddr_un un;
  socklen_t len;
  unix_addr(path, &un, &len);
  int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) fail_errno("socket");
  if (bind(lfd, (struct sockaddr *)&un, len) != 0) fail_errno("bind");
  if (listen(lfd, 4096) != 0) fail_errno("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail_errno("epoll_create1");
  watch(ep, lfd, EPOLLIN);
  printf("ready\n");
  fflush(stdout);
  static char buf[MAX_SIZE];
  struct epoll_event events[MAX_EVENTS];
  long accepted = 0, open = 0, echoed = 0;
  double deadline = now_s() + timeout;
  while (accepted < k || open > 0) {
    if (now_s() > deadline) fail("timed out after %g s with %ld of %ld accepted", timeout, accepted, k);
    int got = epoll_wait(ep, events, MAX_EVENTS, 100);
    if (got < 0 && errno != EINTR) fail_errno("epoll_wait");
    for (int i = 0; i < got; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            fail_errno("accept4");
          }
          watch(ep, c, EPOLLIN);
          accepted++;
          open++;
        }
        continue;
      }
      for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          if (errno == ECONNRESET) r = 0;
          else fail_errno("recv");
        }
        if (r == 0) {
          close(fd); /* also leaves the epoll set */
          open--;
          break;
        }
        if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r) {
          if (errno == EPIPE || errno == ECONNRESET) continue;
          fail_errno("send");
        }
        echoed++;
      }
    }
  }
  close(lfd);
  unlink(path);
  printf("{\"role\":\"server\",\"k\":%ld,\"n\":%ld}\n", k, echoed);
}

static void client(const char *path, long k, double warm_ms, double seconds, long size) {
  struct sockaddr_un un;
  socklen_t len;
  unix_addr(path, &un, &len);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail_errno("epoll_create1");
  int *fds = malloc(sizeof(int) * (size_t)k);
  if (!fds) fail("out of memory");
  for (long i = 0; i < k; i++) {
    /* Blocking connect: a full backlog waits instead of failing with EAGAIN. */
    fds[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fds[i] < 0) fail_errno("socket");
    if (connect(fds[i], (struct sockaddr *)&un, len) != 0) fail_errno("connect");
    watch(ep, fds[i], EPOLLIN);
  }
  printf("ready\n");
  fflush(stdout);
  char msg[MAX_SIZE], reply[MAX_SIZE];
  for (long i = 0; i < size; i++) msg[i] = (char)((i * 31 + 7) & 0xff);
  for (long i = 0; i < k; i++) {
    if (send(fds[i], msg, (size_t)size, MSG_NOSIGNAL) != size) fail_errno("send");
  }
  struct epoll_event events[MAX_EVENTS];
  double start = now_s() + warm_ms / 1000, end = start + seconds, t = now_s();
  long trips = 0, counted = -1;
  double c0 = 0;
  while (t < end) {
    int got = epoll_wait(ep, events, MAX_EVENTS, 5000);
    if (got < 0 && errno != EINTR) fail_errno("epoll_wait");
    if (got == 0) fail("no reply for 5 s");
    for (int i = 0; i < got; i++) {
      int fd = events[i].data.fd;
      ssize_t r = recv(fd, reply, sizeof reply, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r < 0) fail_errno("recv");
      if (r != size || memcmp(reply, msg, (size_t)size) != 0) fail("wrong reply of %zd bytes", r);
      trips++;
      if (send(fd, msg, (size_t)size, MSG_NOSIGNAL) != size) fail_errno("send");
    }
    t = now_s();
    if (counted < 0 && t >= start) {
      counted = trips;
      c0 = cpu_s();
      start = t;
      end = t + seconds;
    }
  }
  double elapsed = t - start, cpu = cpu_s() - c0;
  long n = trips - counted;
  for (long i = 0; i < k; i++) close(fds[i]);
  free(fds);
  printf("{\"role\":\"client\",\"k\":%ld,\"n\":%ld,\"elapsed_s\":%.4f,\"msgs_per_s\":%.1f,"
         "\"cpu_us_per_trip\":%.3f}\n",
         k, n, elapsed, (double)n / elapsed, cpu * 1e6 / (double)n);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) fail("usage: epollbench idle N | server PATH -k K | client PATH -k K");
  role = argv[1];
  long k = 1, size = 64;
  double seconds = 1, warm_ms = 200, timeout = 60;
  int opt;
  optind = 3;
  while ((opt = getopt(argc, argv, "k:d:w:s:t:")) != -1) {
    switch (opt) {
    case 'k': k = strtol(optarg, NULL, 10); break;
    case 'd': seconds = strtod(optarg, NULL); break;
    case 'w': warm_ms = strtod(optarg, NULL); break;
    case 's': size = strtol(optarg, NULL, 10); break;
    case 't': timeout = strtod(optarg, NULL); break;
    default: fail("unknown option");
    }
  }
  if (argc < 3) fail("missing argument");
  if (k < 1 || size < 1 || size > MAX_SIZE || seconds <= 0) fail("bad option value");
  if (strcmp(role, "idle") == 0) {
    long n = strtol(argv[2], NULL, 10);
    if (n < 1) fail("N must be at least 1");
    idle(n, seconds);
  } else if (strcmp(role, "server") == 0) {
    server(argv[2], k, timeout);
  } else if (strcmp(role, "client") == 0) {
    client(argv[2], k, warm_ms, seconds, size);
  } else {
    fail("unknown role \"%s\"", role);
  }
  return 0;
}

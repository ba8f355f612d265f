/*
 * sockbench: the C reference peers for the @bsd/sockets benchmarks.
 *
 *   sockbench KIND ROLE ADDR [options]
 *
 * KIND  seqpacket | unixgram | unix | udp | tcp | icmp
 * ROLE  server  echo every record back (icmp: none, the kernel answers)
 *       client  N timed round trips of S bytes, one outstanding, blocking recv
 *       sink    receive as fast as possible, time first record -> last record
 *       flood   send N records of S bytes as fast as possible, blocking send
 * ADDR  unix kinds: a path, or @name for the Linux abstract namespace
 *       udp, tcp:   [HOST:]PORT (HOST defaults to 127.0.0.1; PORT 0 = any)
 *       icmp:       HOST
 *
 * Options:
 *   -n, --count N       records to time (client, flood) or to stop after
 *                       (server, sink; 0 = until end of stream or quiet)
 *   -s, --size BYTES    record size (default 64; icmp payload default 56);
 *                       unix and tcp servers and sinks count records of
 *                       this size in the byte stream
 *   -w, --warmup N      untimed round trips before the timed ones
 *                       (client; default N/10, at most 1000)
 *   -t, --timeout SEC   give up after SEC seconds (default 30)
 *   -q, --quiet-ms MS   datagram server/sink: stop after MS ms without a
 *                       record, once one arrived (default 500)
 *   -r, --rcvbuf BYTES  datagram sink/server receive buffer (default 8 MiB;
 *                       SO_RCVBUFFORCE when allowed, else SO_RCVBUF)
 *   -b, --bind NAME     unixgram client: bind this name to get replies
 *                       (default: autobind an abstract name)
 *   -c, --conns N       stream/seqpacket server: connections to serve, one
 *                       after another (default 1)
 *
 * Protocol: once the socket is bound (server, sink) or connected (client,
 * flood) the program prints one line "ready" ("ready PORT" for udp and tcp
 * servers and sinks), and at the end exactly one JSON line. On failure that
 * line carries "error" and the exit status is 1 (2 for a timeout).
 * A 0-byte seqpacket record is indistinguishable from end of stream here, so
 * records are at least 1 byte.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum kind { K_SEQPACKET, K_UNIXGRAM, K_UNIX, K_UDP, K_TCP, K_ICMP };
enum role { R_SERVER, R_CLIENT, R_SINK, R_FLOOD };

static const char *kind_names[] = {"seqpacket", "unixgram", "unix", "udp", "tcp", "icmp"};
static const char *role_names[] = {"server", "client", "sink", "flood"};

struct opts {
  enum kind kind;
  enum role role;
  const char *addr;
  long n;
  long size;
  long warmup;
  double timeout;
  double quiet_ms;
  long rcvbuf;
  const char *bind;
  long conns;
};

struct addr {
  struct sockaddr_storage ss;
  socklen_t len;
};

static struct opts o;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* Prints the error result line (and the reason on stderr), then exits. */
static void fail(int status, long n, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "sockbench %s %s: %s\n", kind_names[o.kind], role_names[o.role], msg);
  printf("{\"role\":\"%s\",\"kind\":\"%s\",\"n\":%ld,\"error\":", role_names[o.role],
         kind_names[o.kind], n);
  json_string(msg);
  printf("}\n");
  fflush(stdout);
  exit(status);
}

/* Lower-cased strerror, so messages read `connect "/x": connection refused`. */
static const char *reason(int err) {
  static char buf[128];
  snprintf(buf, sizeof buf, "%s", strerror(err));
  if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] += 'a' - 'A';
  return buf;
}

static void fail_errno(long n, const char *call) {
  int err = errno;
  if (err == EINTR && timed_out) fail(2, n, "timed out after %g s", o.timeout);
  fail(1, n, "%s \"%s\": %s", call, o.addr, reason(err));
}

static int is_unix(void) { return o.kind == K_SEQPACKET || o.kind == K_UNIXGRAM || o.kind == K_UNIX; }
static int is_stream(void) { return o.kind == K_UNIX || o.kind == K_TCP; }
static int is_dgram(void) { return o.kind == K_UNIXGRAM || o.kind == K_UDP; }

static int sock_type(void) {
  switch (o.kind) {
  case K_SEQPACKET: return SOCK_SEQPACKET;
  case K_UNIXGRAM:
  case K_UDP: return SOCK_DGRAM;
  case K_UNIX:
  case K_TCP: return SOCK_STREAM;
  case K_ICMP: return SOCK_RAW;
  }
  return -1;
}

static void unix_addr(const char *name, struct addr *a) {
  struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
  memset(a, 0, sizeof *a);
  un->sun_family = AF_UNIX;
  size_t len = strlen(name);
  if (name[0] == '@') {
    if (len > sizeof un->sun_path) fail(1, 0, "address \"%s\": abstract name longer than 107 bytes", name);
    memcpy(un->sun_path + 1, name + 1, len - 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  } else {
    if (len == 0 || len >= sizeof un->sun_path)
      fail(1, 0, "address \"%s\": path must be 1 to 107 bytes", name);
    memcpy(un->sun_path, name, len);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  }
}

static void ipv4_addr(const char *spec, int with_port, struct addr *a) {
  struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
  char host[64] = "127.0.0.1";
  const char *port = spec;
  memset(a, 0, sizeof *a);
  in->sin_family = AF_INET;
  a->len = sizeof *in;
  if (!with_port) {
    port = NULL;
    snprintf(host, sizeof host, "%s", spec);
  } else {
    const char *colon = strrchr(spec, ':');
    if (colon) {
      if ((size_t)(colon - spec) >= sizeof host) fail(1, 0, "address \"%s\": host too long", spec);
      memcpy(host, spec, (size_t)(colon - spec));
      host[colon - spec] = 0;
      port = colon + 1;
    }
  }
  if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
    fail(1, 0, "address \"%s\": not an IPv4 address", spec);
  if (port) {
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == 0 || *end != 0 || p < 0 || p > 65535)
      fail(1, 0, "address \"%s\": port must be 0 to 65535", spec);
    in->sin_port = htons((uint16_t)p);
  }
}

/* Parses ADDR, and rewrites o.addr as messages should show it ("127.0.0.1:9"). */
static void parse_addr(struct addr *a) {
  static char shown[80];
  if (is_unix()) {
    unix_addr(o.addr, a);
    return;
  }
  ipv4_addr(o.addr, o.kind != K_ICMP, a);
  const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
  if (o.kind == K_ICMP) snprintf(shown, sizeof shown, "%s", host);
  else snprintf(shown, sizeof shown, "%s:%u", host, ntohs(in->sin_port));
  o.addr = shown;
}

static int open_socket(void) {
  int proto = o.kind == K_ICMP ? IPPROTO_ICMP : 0;
  int fd = socket(is_unix() ? AF_UNIX : AF_INET, sock_type() | SOCK_CLOEXEC, proto);
  if (fd < 0) fail_errno(0, "socket");
  return fd;
}

static void set_int(int fd, int level, int name, int value) {
  setsockopt(fd, level, name, &value, sizeof value);
}

static void set_quiet(int fd) {
  struct timeval tv;
  tv.tv_sec = (time_t)(o.quiet_ms / 1000);
  tv.tv_usec = (suseconds_t)((o.quiet_ms - (double)tv.tv_sec * 1000) * 1000);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static long raise_rcvbuf(int fd) {
  int v = (int)o.rcvbuf;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  socklen_t len = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
  return v;
}

/* Binds and (for connection kinds) listens, then prints the ready line. */
static int bind_and_announce(void) {
  struct addr a;
  parse_addr(&a);
  int fd = open_socket();
  if (o.kind == K_TCP) set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0) fail_errno(0, "bind");
  if (!is_dgram() && listen(fd, 16) != 0) fail_errno(0, "listen");
  if (is_unix()) {
    printf("ready\n");
  } else {
    struct sockaddr_in got;
    socklen_t len = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &len);
    printf("ready %u\n", ntohs(got.sin_port));
  }
  fflush(stdout);
  return fd;
}

static int connect_and_announce(void) {
  struct addr a;
  parse_addr(&a);
  int fd = open_socket();
  if (o.kind == K_UNIXGRAM && o.role == R_CLIENT) {
    struct addr me;
    if (o.bind) {
      unix_addr(o.bind, &me);
    } else {
      memset(&me, 0, sizeof me);
      me.ss.ss_family = AF_UNIX;
      me.len = sizeof(sa_family_t); /* autobind: the kernel picks an abstract name */
    }
    if (bind(fd, (struct sockaddr *)&me.ss, me.len) != 0) {
      o.addr = o.bind ? o.bind : "(autobind)";
      fail_errno(0, "bind");
    }
  }
  if (o.kind == K_TCP && o.role == R_CLIENT) set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  if (connect(fd, (struct sockaddr *)&a.ss, a.len) != 0) fail_errno(0, "connect");
  printf("ready\n");
  fflush(stdout);
  return fd;
}

static int accept_one(int lfd, long n) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) fail_errno(n, "accept");
  if (o.kind == K_TCP) set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  return fd;
}

/* Sends all of buf: one record for packet kinds, a loop for streams. */
static void send_all(int fd, const char *buf, size_t len, long n) {
  size_t off = 0;
  do {
    ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR && !timed_out) continue;
      if (errno == ENOBUFS) continue; /* udp on a busy loopback: try again */
      fail_errno(n, "send");
    }
    off += (size_t)w;
  } while (off < len);
}

static char *alloc_buf(size_t len) {
  char *b = malloc(len);
  if (!b) fail(1, 0, "out of memory for %zu bytes", len);
  return b;
}

static size_t recv_buf_len(void) {
  return (size_t)(o.size > 65536 ? o.size : 65536) + 1;
}

static void role_server(void) {
  int lfd = bind_and_announce();
  size_t cap = recv_buf_len();
  char *buf = alloc_buf(cap);
  long records = 0, bytes = 0;
  if (is_dgram()) {
    raise_rcvbuf(lfd);
    while (o.n == 0 || records < o.n) {
      struct sockaddr_storage from;
      socklen_t flen = sizeof from;
      ssize_t r = recvfrom(lfd, buf, cap, 0, (struct sockaddr *)&from, &flen);
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break; /* quiet period over */
        if (errno == EINTR && !timed_out) continue;
        fail_errno(records, "recvfrom");
      }
      if (o.kind == K_UNIXGRAM && flen <= sizeof(sa_family_t))
        fail(1, records, "recvfrom \"%s\": the sender has no name to reply to; bind the client", o.addr);
      if (records == 0) set_quiet(lfd);
      ssize_t w;
      do {
        w = sendto(lfd, buf, (size_t)r, MSG_NOSIGNAL, (struct sockaddr *)&from, flen);
      } while (w < 0 && (errno == ENOBUFS || (errno == EINTR && !timed_out)));
      if (w < 0) fail_errno(records, "sendto");
      records++;
      bytes += r;
    }
  } else {
    for (long c = 0; c < o.conns && (o.n == 0 || records < o.n); c++) {
      int fd = accept_one(lfd, records);
      for (;;) {
        ssize_t r = recv(fd, buf, cap, 0);
        if (r < 0) {
          if (errno == EINTR && !timed_out) continue;
          if (errno == ECONNRESET) break;
          fail_errno(records, "recv");
        }
        if (r == 0) break;
        send_all(fd, buf, (size_t)r, records);
        bytes += r;
        records = is_stream() ? bytes / o.size : records + 1;
        if (o.n > 0 && records >= o.n) break;
      }
      close(fd);
    }
  }
  printf("{\"role\":\"server\",\"kind\":\"%s\",\"n\":%ld,\"bytes\":%ld}\n", kind_names[o.kind],
         records, bytes);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void print_rtts(uint64_t *rtt, long n, uint64_t elapsed) {
  qsort(rtt, (size_t)n, sizeof *rtt, cmp_u64);
  double sum = 0;
  for (long i = 0; i < n; i++) sum += (double)rtt[i];
  double median = n % 2 ? (double)rtt[n / 2] : ((double)rtt[n / 2 - 1] + (double)rtt[n / 2]) / 2;
  long p99 = (n * 99 + 99) / 100 - 1;
  printf("{\"role\":\"client\",\"kind\":\"%s\",\"n\":%ld,\"size\":%ld,\"rtt_us_median\":%.3f,"
         "\"rtt_us_mean\":%.3f,\"rtt_us_p99\":%.3f,\"rtt_us_min\":%.3f,\"rtt_us_max\":%.3f,"
         "\"elapsed_s\":%.6f}\n",
         kind_names[o.kind], n, o.size, median / 1e3, sum / (double)n / 1e3, (double)rtt[p99] / 1e3,
         (double)rtt[0] / 1e3, (double)rtt[n - 1] / 1e3, (double)elapsed / 1e9);
}

/* Receives one reply of exactly o.size bytes (streams: collects them). */
static void recv_reply(int fd, char *buf, size_t cap, long i) {
  size_t got = 0;
  do {
    ssize_t r = recv(fd, buf + got, is_stream() ? (size_t)o.size - got : cap, 0);
    if (r < 0) {
      if (errno == EINTR && !timed_out) continue;
      fail_errno(i, "recv");
    }
    if (r == 0) fail(1, i, "recv \"%s\": the server closed the connection", o.addr);
    got += (size_t)r;
  } while (is_stream() && got < (size_t)o.size);
  if (got != (size_t)o.size)
    fail(1, i, "recv \"%s\": reply of %zu bytes, expected %ld", o.addr, got, o.size);
}

static void role_client(void) {
  int fd = connect_and_announce();
  size_t cap = recv_buf_len();
  char *msg = alloc_buf((size_t)o.size), *buf = alloc_buf(cap);
  uint64_t *rtt = malloc(sizeof *rtt * (size_t)o.n);
  if (!rtt) fail(1, 0, "out of memory for %ld round trips", o.n);
  for (long i = 0; i < o.size; i++) msg[i] = (char)(i * 31 + 7);
  uint64_t start = 0;
  for (long i = -o.warmup; i < o.n; i++) {
    if (i == 0) start = now_ns();
    msg[0] = (char)i; /* a stale reply would then not compare equal */
    uint64_t t0 = now_ns();
    send_all(fd, msg, (size_t)o.size, i < 0 ? 0 : i);
    recv_reply(fd, buf, cap, i < 0 ? 0 : i);
    uint64_t t1 = now_ns();
    if (memcmp(msg, buf, (size_t)o.size) != 0)
      fail(1, i < 0 ? 0 : i, "recv \"%s\": reply differs from the request", o.addr);
    if (i >= 0) rtt[i] = t1 - t0;
  }
  uint64_t elapsed = now_ns() - start;
  shutdown(fd, SHUT_WR);
  close(fd);
  print_rtts(rtt, o.n, elapsed);
}

static void role_sink(void) {
  int lfd = bind_and_announce();
  long rcvbuf = is_dgram() ? raise_rcvbuf(lfd) : 0;
  int fd = is_dgram() ? lfd : accept_one(lfd, 0);
  size_t cap = recv_buf_len();
  char *buf = alloc_buf(cap);
  long records = 0, bytes = 0, first_records = 0;
  uint64_t first = 0, last = 0;
  int eof = 0;
  while (o.n == 0 || records < o.n) {
    ssize_t r = recv(fd, buf, cap, 0);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break; /* quiet period over */
      if (errno == EINTR && !timed_out) continue;
      if (errno == ECONNRESET) { eof = 1; break; }
      fail_errno(records, "recv");
    }
    last = now_ns();
    if (r == 0 && !is_dgram()) { eof = 1; break; }
    bytes += r;
    records = is_stream() ? bytes / o.size : records + 1;
    if (first == 0) {
      first = last;
      first_records = records;
      if (is_dgram()) set_quiet(fd);
    }
  }
  double span = (double)(last - first) / 1e9;
  double rate = span > 0 ? (double)(records - first_records) / span : 0;
  printf("{\"role\":\"sink\",\"kind\":\"%s\",\"n\":%ld,\"bytes\":%ld,\"size\":%ld,"
         "\"msgs_per_s\":%.0f,\"first_to_last_s\":%.6f,\"eof\":%s",
         kind_names[o.kind], records, bytes, o.size, rate, span, eof ? "true" : "false");
  if (o.n > 0) printf(",\"expected\":%ld,\"lost\":%ld", o.n, o.n - records);
  if (is_dgram()) printf(",\"rcvbuf\":%ld", rcvbuf);
  printf("}\n");
}

static void role_flood(void) {
  int fd = connect_and_announce();
  char *msg = alloc_buf((size_t)o.size);
  for (long i = 0; i < o.size; i++) msg[i] = (char)(i * 31 + 7);
  uint64_t t0 = now_ns();
  for (long i = 0; i < o.n; i++) send_all(fd, msg, (size_t)o.size, i);
  uint64_t t1 = now_ns();
  shutdown(fd, SHUT_WR);
  close(fd);
  double span = (double)(t1 - t0) / 1e9;
  printf("{\"role\":\"flood\",\"kind\":\"%s\",\"n\":%ld,\"size\":%ld,\"msgs_per_s\":%.0f,"
         "\"elapsed_s\":%.6f}\n",
         kind_names[o.kind], o.n, o.size, span > 0 ? (double)o.n / span : 0, span);
}

static uint16_t checksum(const void *data, size_t len) {
  const uint8_t *p = data;
  uint32_t sum = 0;
  for (; len > 1; len -= 2, p += 2) sum += (uint32_t)(p[0] << 8 | p[1]);
  if (len) sum += (uint32_t)(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* Raw ICMP echo: the kernel is the server, an ICMP_FILTER passes only replies. */
static void role_icmp_client(void) {
  int fd = connect_and_announce();
  struct icmp_filter filt = {~(1u << ICMP_ECHOREPLY)};
  if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &filt, sizeof filt) != 0) fail_errno(0, "setsockopt");
  size_t plen = 8 + (size_t)o.size;
  uint8_t *pkt = (uint8_t *)alloc_buf(plen);
  uint8_t *buf = (uint8_t *)alloc_buf(plen + 60 + 1);
  uint64_t *rtt = malloc(sizeof *rtt * (size_t)o.n);
  if (!rtt) fail(1, 0, "out of memory for %ld round trips", o.n);
  uint16_t id = (uint16_t)getpid();
  for (long i = 0; i < o.size; i++) pkt[8 + i] = (uint8_t)(i * 31 + 7);
  uint64_t start = 0;
  for (long i = -o.warmup; i < o.n; i++) {
    long at = i < 0 ? 0 : i;
    uint16_t seq = (uint16_t)(i + o.warmup);
    pkt[0] = ICMP_ECHO, pkt[1] = 0, pkt[2] = pkt[3] = 0;
    pkt[4] = (uint8_t)(id >> 8), pkt[5] = (uint8_t)id;
    pkt[6] = (uint8_t)(seq >> 8), pkt[7] = (uint8_t)seq;
    uint16_t sum = checksum(pkt, plen);
    pkt[2] = (uint8_t)(sum >> 8), pkt[3] = (uint8_t)sum;
    if (i == 0) start = now_ns();
    uint64_t t0 = now_ns();
    send_all(fd, (char *)pkt, plen, at);
    for (;;) {
      ssize_t r = recv(fd, buf, plen + 61, 0);
      if (r < 0) {
        if (errno == EINTR && !timed_out) continue;
        fail_errno(at, "recv");
      }
      size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
      if ((size_t)r < ihl + 8) continue;
      const uint8_t *ic = buf + ihl;
      if (ic[0] == ICMP_ECHOREPLY && memcmp(ic + 4, pkt + 4, 4) == 0) {
        if ((size_t)r - ihl != plen)
          fail(1, at, "recv \"%s\": echo reply of %zu bytes, expected %zu", o.addr, (size_t)r - ihl, plen);
        break;
      }
    }
    uint64_t t1 = now_ns();
    if (i >= 0) rtt[i] = t1 - t0;
  }
  uint64_t elapsed = now_ns() - start;
  close(fd);
  print_rtts(rtt, o.n, elapsed);
}

static void usage(const char *why) {
  fprintf(stderr,
          "sockbench: %s\n"
          "usage: sockbench seqpacket|unixgram|unix|udp|tcp|icmp server|client|sink|flood ADDR\n"
          "         [-n COUNT] [-s BYTES] [-w WARMUP] [-t SECONDS] [-q QUIET_MS] [-r RCVBUF]\n"
          "         [-b NAME] [-c CONNS]\n",
          why);
  exit(64);
}

static long parse_long(const char *name, const char *s, long min) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || v < min) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer >= %ld, got \"%s\"", name, min, s);
    usage(msg);
  }
  return v;
}

static double parse_double(const char *name, const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*s == 0 || *end != 0 || !(v >= 0)) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number >= 0, got \"%s\"", name, s);
    usage(msg);
  }
  return v;
}

static int lookup(const char *s, const char **names, int count) {
  for (int i = 0; i < count; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"count", required_argument, 0, 'n'},  {"size", required_argument, 0, 's'},
      {"warmup", required_argument, 0, 'w'}, {"timeout", required_argument, 0, 't'},
      {"quiet-ms", required_argument, 0, 'q'}, {"rcvbuf", required_argument, 0, 'r'},
      {"bind", required_argument, 0, 'b'},   {"conns", required_argument, 0, 'c'},
      {0, 0, 0, 0}};
  long n = -1, size = -1, warmup = -1;
  o.timeout = 30, o.quiet_ms = 500, o.rcvbuf = 8 << 20, o.conns = 1;
  int c;
  while ((c = getopt_long(argc, argv, "n:s:w:t:q:r:b:c:", longopts, NULL)) != -1) {
    switch (c) {
    case 'n': n = parse_long("--count", optarg, 0); break;
    case 's': size = parse_long("--size", optarg, 1); break;
    case 'w': warmup = parse_long("--warmup", optarg, 0); break;
    case 't': o.timeout = parse_double("--timeout", optarg); break;
    case 'q': o.quiet_ms = parse_double("--quiet-ms", optarg); break;
    case 'r': o.rcvbuf = parse_long("--rcvbuf", optarg, 1); break;
    case 'b': o.bind = optarg; break;
    case 'c': o.conns = parse_long("--conns", optarg, 1); break;
    default: usage("unknown option");
    }
  }
  if (argc - optind != 3) usage("expected KIND ROLE ADDR");
  int k = lookup(argv[optind], kind_names, 6), r = lookup(argv[optind + 1], role_names, 4);
  if (k < 0) usage("unknown kind");
  if (r < 0) usage("unknown role");
  o.kind = (enum kind)k, o.role = (enum role)r, o.addr = argv[optind + 2];
  if (o.kind == K_ICMP && o.role != R_CLIENT) usage("icmp has only the client role");
  int timed = o.role == R_CLIENT || o.role == R_FLOOD;
  o.n = n >= 0 ? n : timed ? (o.role == R_CLIENT ? 10000 : 100000) : 0;
  if (timed && o.n == 0) usage("--count must be at least 1 for client and flood");
  o.size = size >= 0 ? size : o.kind == K_ICMP ? 56 : 64;
  o.warmup = warmup >= 0 ? warmup : (o.n / 10 < 1000 ? o.n / 10 : 1000);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART: a blocked call returns EINTR */
  sigaction(SIGALRM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (o.timeout > 0) {
    struct itimerval it = {{0, 0}, {(time_t)o.timeout, (suseconds_t)((o.timeout - (double)(time_t)o.timeout) * 1e6)}};
    if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0) it.it_value.tv_usec = 1;
    setitimer(ITIMER_REAL, &it, NULL);
  }

  switch (o.role) {
  case R_SERVER: role_server(); break;
  case R_CLIENT: o.kind == K_ICMP ? role_icmp_client() : role_client(); break;
  case R_SINK: role_sink(); break;
  case R_FLOOD: role_flood(); break;
  }
  fflush(stdout);
  return 0;
}

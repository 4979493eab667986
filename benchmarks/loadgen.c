/*
 * loadgen: the connection load generator of the benchmark harness (benchmarks/run.ts).
 *
 * One thread, epoll (edge-triggered), non-blocking sockets, OpenSSL for TLS. It only ever
 * connects to a 127.0.0.0/8 address and every run is bounded in time and in count.
 *
 *   loadgen MODE --port P [options]
 *
 * Modes
 *   tcp-churn   connect, read the server's byte, read to EOF, close; --concurrency in flight
 *   tls-full    the same over TLS 1.3, a full handshake every time (no session reuse)
 *   tls-resume  TLS 1.3 resumed with a session ticket (one priming connection gets the
 *               first ticket; the newest ticket received is used); reports the fraction
 *               of connections actually resumed
 *   latency     open connections at a fixed --rate per second (open loop, plain TCP or
 *               --tls), record connect() -> first byte in microseconds
 *   hold        open --hold K TLS (or --plain) connections, wait for each one's first byte,
 *               print {"event":"up",...} once all K are up, keep them idle until stdin is
 *               closed or SIGTERM/SIGINT arrives (or --max-time passes), then report
 *
 * Options
 *   --host A          127.x.x.x only (default 127.0.0.1)
 *   --port P          server port (required)
 *   --concurrency N   connections in flight (closed-loop modes; hold: handshakes in flight)
 *   --duration S      seconds of load (closed-loop and latency modes), default 2
 *   --count N         stop after N connections (closed-loop), 0 = duration only
 *   --rate R          connections per second (latency)
 *   --max-inflight N  latency: connections in flight at most; an arrival beyond it is
 *                     counted as "skipped" (the server is saturated; the rate is too high)
 *   --tls / --plain   latency and hold: TLS or plain TCP
 *   --alpn            TLS modes: offer ALPN h2, http/1.1
 *   --proxy-v2        TLS modes: send a PROXY protocol version 2 header (TCP4, 28 bytes) on
 *                     each connection before its ClientHello, as a balancer does
 *   --cert FILE       the server's certificate (PEM); TLS modes check that the server
 *                     presented exactly this certificate (it is not *verified*: no chain,
 *                     no name; this is a load generator)
 *   --timeout S       per-connection timeout, default 10
 *   --max-time S      absolute bound on the whole run, default 300
 *   --cpu N           pin this process to CPU N
 *
 * Output: one JSON line on stdout with the results (hold mode prints an "up" line first).
 * Exit status 0 when the run happened (even with connection errors, which are counted),
 * 2 on a usage error, 1 when the run could not start.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONCURRENCY 20000
#define MAX_HOLD 60000
#define MAX_COUNT 50000000ULL
#define MAX_DURATION 900.0
#define MAX_RATE 1000000.0
#define MAX_LATENCY_SAMPLES 20000000ULL

enum mode { M_TCP_CHURN, M_TLS_FULL, M_TLS_RESUME, M_LATENCY, M_HOLD };
enum cstate { S_FREE, S_CONNECTING, S_HANDSHAKE, S_READ, S_HOLD };
enum ekind { E_SOCKET, E_CONNECT, E_TLS, E_VERSION, E_CERT, E_EOF, E_RESET, E_TIMEOUT, E_NKINDS };
static const char *ekind_name[E_NKINDS] = {"socket", "connect", "tls", "version", "cert", "eof_before_byte", "reset", "timeout"};

struct conn {
  int fd;
  SSL *ssl;
  enum cstate st;
  int got_byte;
  uint64_t t_start;  /* ns, monotonic: when connect() was called */
  struct conn *prev, *next; /* the active list, oldest first (for timeouts) */
  struct conn *free_next;
};

/* ---- configuration ------------------------------------------------------------------ */
static enum mode mode;
static const char *mode_name;
static struct sockaddr_in target;
static char host_text[64] = "127.0.0.1";
static int use_tls;
static long concurrency = 64;
static double duration_s = 2.0;
static unsigned long long count_limit;
static double rate;
static long max_inflight = 1000;
static long hold_target;
static const char *cert_file;
static double timeout_s = 10.0;
static double max_time_s = 300.0;
static int cpu_pin = -1;

/* ---- state ---------------------------------------------------------------------------- */
static int ep = -1;
static int timer_fd = -1;
static SSL_CTX *ctx;
static X509 *expected_cert;
static SSL_SESSION *saved_session;
static struct conn *pool;
static long pool_size;
static struct conn *free_list;
static struct conn *active_head, *active_tail;
static long inflight;      /* conns not free */
static long opening;       /* conns not yet holding (hold mode) */
static unsigned long long tickets, started, completed, resumed, handshakes, errors_total, skipped, dropped;
static unsigned long long ekind_count[E_NKINDS];
static long up_count;
static int up_announced;
static int recording; /* latency samples are kept (not during tls-resume's priming) */
static volatile sig_atomic_t stop_requested;
static int stdin_closed;
static uint32_t *lat;   /* latency samples, microseconds */
static unsigned long long lat_n, lat_cap;
static uint64_t max_lag_ns;
static char tag_timer, tag_stdin;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(int which) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const struct timeval *tv = which == 0 ? &ru.ru_utime : &ru.ru_stime;
  return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s\n", what);
  exit(1);
}

static void usage(const char *msg) {
  fprintf(stderr, "loadgen: %s\nusage: loadgen tcp-churn|tls-full|tls-resume|latency|hold --port P [options] (see loadgen.c)\n", msg);
  exit(2);
}

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* ---- TLS -------------------------------------------------------------------------------- */
/* Keeps the newest ticket (tls-resume only). */
static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  (void)ssl;
  tickets++;
  if (mode != M_TLS_RESUME) return 0; /* not kept: OpenSSL frees it */
  if (saved_session) SSL_SESSION_free(saved_session);
  saved_session = sess; /* we keep the reference OpenSSL gave us */
  return 1;
}

static int offer_alpn = 0;
static int send_proxy_v2 = 0;
/* PROXY v2: signature, PROXY command, TCP over IPv4, 12 bytes: 192.0.2.1:40000 -> 192.0.2.2:443. */
static const unsigned char proxy_v2_header[28] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
                                                  0x00, 0x0c, 192,  0,    2,    1,    192,  0,    2,    2,    0x9c, 0x40, 0x01, 0xbb};

static void tls_init(void) {
  ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) die("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_set1_groups_list(ctx, "X25519") != 1) die("cannot select X25519");
  if (mode == M_HOLD) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (mode == M_TLS_RESUME) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  /* --alpn: offer h2 then http/1.1, as a browser does (the server chooses by the client's order or its own). */
  if (offer_alpn && SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2\x08http/1.1", 12) != 0) die("cannot set ALPN");
  if (cert_file) {
    FILE *f = fopen(cert_file, "r");
    if (!f) die("cannot open --cert file");
    expected_cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!expected_cert) die("cannot read the --cert PEM certificate");
  }
}

/* ---- connection bookkeeping ------------------------------------------------------------- */
static void list_remove(struct conn *c) {
  if (c->prev) c->prev->next = c->next; else active_head = c->next;
  if (c->next) c->next->prev = c->prev; else active_tail = c->prev;
  c->prev = c->next = NULL;
}

static void list_append(struct conn *c) {
  c->prev = active_tail;
  c->next = NULL;
  if (active_tail) active_tail->next = c; else active_head = c;
  active_tail = c;
}

static void release(struct conn *c) {
  if (c->ssl) {
    /* No close_notify is sent (the server closed first), but the connection counts as shut
       down: otherwise SSL_free marks its session not resumable, and that is the session a
       resumption run keeps. */
    SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  if (c->st != S_HOLD) {
    opening--;
    list_remove(c); /* holding connections left the timeout list when they came up */
  }
  c->st = S_FREE;
  c->free_next = free_list;
  free_list = c;
  inflight--;
}

static void fail(struct conn *c, enum ekind kind) {
  ERR_clear_error();
  if (c->st == S_HOLD) {
    dropped++;
    up_count--;
  } else {
    errors_total++;
    ekind_count[kind]++;
  }
  release(c);
}

static void first_byte(struct conn *c) {
  c->got_byte = 1;
  if (recording && mode != M_HOLD) {
    if (lat_n == lat_cap && lat_cap < MAX_LATENCY_SAMPLES) {
      unsigned long long cap = lat_cap ? lat_cap * 2 : 65536;
      uint32_t *grown = realloc(lat, cap * sizeof *lat);
      if (grown) {
        lat = grown;
        lat_cap = cap;
      }
    }
    if (lat_n < lat_cap) {
      uint64_t us = (now_ns() - c->t_start) / 1000ULL;
      lat[lat_n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
  }
  if (mode == M_HOLD) {
    list_remove(c);
    c->st = S_HOLD;
    opening--;
    up_count++;
  }
}

static void complete(struct conn *c) {
  completed++;
  release(c);
}

static int after_handshake(struct conn *c) {
  handshakes++;
  if (SSL_version(c->ssl) != TLS1_3_VERSION) {
    fail(c, E_VERSION);
    return -1;
  }
  if (expected_cert) {
    X509 *peer = SSL_get1_peer_certificate(c->ssl);
    int same = peer && X509_cmp(peer, expected_cert) == 0;
    if (peer) X509_free(peer);
    if (!same) {
      fail(c, E_CERT);
      return -1;
    }
  }
  if (SSL_session_reused(c->ssl)) resumed++;
  return 0;
}

/* Runs one connection's state machine as far as it goes without blocking. */
static void drive(struct conn *c, uint32_t events) {
  char buf[512];
  for (;;) {
    switch (c->st) {
      case S_FREE:
        return;
      case S_CONNECTING: {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
          fail(c, E_CONNECT);
          return;
        }
        if (use_tls) {
          /* A fresh socket's send buffer takes 28 bytes whole; anything else is a failed connect. */
          if (send_proxy_v2 && send(c->fd, proxy_v2_header, sizeof proxy_v2_header, MSG_NOSIGNAL) != (ssize_t)sizeof proxy_v2_header) {
            fail(c, E_CONNECT);
            return;
          }
          c->ssl = SSL_new(ctx);
          if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
            fail(c, E_TLS);
            return;
          }
          if (mode == M_TLS_RESUME && saved_session) {
            /* OpenSSL's client uses a TLS 1.3 session once (it marks it not resumable after
               a resumption), and Node's server sends no new ticket on a resumed connection.
               Each connection offers a copy of the kept ticket, so every one can resume. */
            SSL_SESSION *copy = SSL_SESSION_dup(saved_session);
            if (copy) {
              SSL_set_session(c->ssl, copy);
              SSL_SESSION_free(copy);
            }
          }
          SSL_set_connect_state(c->ssl);
          c->st = S_HANDSHAKE;
        } else {
          c->st = S_READ;
        }
        break;
      }
      case S_HANDSHAKE: {
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) {
          if (after_handshake(c) != 0) return;
          c->st = S_READ;
          break;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        fail(c, e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? E_RESET : E_TLS);
        return;
      }
      case S_READ:
      case S_HOLD: {
        ssize_t n;
        int eof = 0, err = 0;
        if (c->ssl) {
          int r = SSL_read(c->ssl, buf, sizeof buf);
          if (r > 0) {
            n = r;
          } else {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            /* SSL_OP_IGNORE_UNEXPECTED_EOF makes a bare FIN a ZERO_RETURN too */
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0 && ERR_peek_error() == 0)) eof = 1;
            else err = 1;
            n = 0;
          }
        } else {
          n = read(c->fd, buf, sizeof buf);
          if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            err = 1;
          } else if (n == 0) {
            eof = 1;
          }
        }
        if (n > 0) {
          if (!c->got_byte) first_byte(c);
          continue; /* read on: to EOF (churn), or to EAGAIN (holding) */
        }
        if (c->st == S_HOLD) {
          fail(c, E_RESET); /* counted as dropped */
          return;
        }
        if (eof && c->got_byte) complete(c);
        else fail(c, err ? E_RESET : E_EOF);
        return;
      }
    }
  }
}

/* Starts one connection; -1 when it failed at once (the caller stops launching for now). */
static int start_conn(uint64_t now) {
  struct conn *c = free_list;
  if (!c) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  started++;
  if (fd < 0) {
    errors_total++;
    ekind_count[E_SOCKET]++;
    return -1;
  }
  free_list = c->free_next;
  c->fd = fd;
  c->ssl = NULL;
  c->got_byte = 0;
  c->t_start = now;
  c->st = S_CONNECTING;
  inflight++;
  opening++;
  list_append(c);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = connect(fd, (struct sockaddr *)&target, sizeof target);
  if (r != 0 && errno != EINPROGRESS) {
    fail(c, E_CONNECT);
    return -1;
  }
  /* Registered after connect(): an unconnected socket polls as HUP. Edge-triggered, so the
     ADD reports the connection if it is already established. */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail(c, E_SOCKET);
    return -1;
  }
  return 0;
}

/* The active list holds every connection not yet done (holding ones excepted), oldest first. */
static void sweep_timeouts(uint64_t now) {
  uint64_t limit = (uint64_t)(timeout_s * 1e9);
  while (active_head && now - active_head->t_start > limit) fail(active_head, E_TIMEOUT);
}

static void arm_timer(uint64_t at_ns) {
  struct itimerspec its = {0};
  its.it_value.tv_sec = (time_t)(at_ns / 1000000000ULL);
  its.it_value.tv_nsec = (long)(at_ns % 1000000000ULL);
  if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- the event loop --------------------------------------------------------------------- */
enum phase { P_CLOSED, P_OPEN, P_HOLD };

/* Returns elapsed seconds from the start of the phase to its last completion. */
static double run_phase(enum phase kind, long conc, unsigned long long limit, double seconds, uint64_t hard_deadline) {
  struct epoll_event evs[1024];
  uint64_t t0 = now_ns();
  uint64_t t_end = t0 + (uint64_t)(seconds * 1e9);
  uint64_t last_done = t0;
  unsigned long long arrivals = 0, arrivals_total = 0;
  double interval_ns = 0;
  if (kind == P_OPEN) {
    interval_ns = 1e9 / rate;
    arrivals_total = (unsigned long long)floor(seconds * rate);
    if (arrivals_total < 1) arrivals_total = 1;
  }
  for (;;) {
    uint64_t now = now_ns();
    int launching = 1;
    if (now >= hard_deadline || stop_requested) launching = 0;
    if (kind == P_CLOSED) {
      if (now >= t_end || (limit && started >= limit)) launching = 0;
      while (launching && inflight < conc && !(limit && started >= limit)) {
        if (start_conn(now) != 0) break;
      }
      if (!launching && inflight == 0) break;
    } else if (kind == P_OPEN) {
      while (launching && arrivals < arrivals_total) {
        uint64_t due = t0 + (uint64_t)((double)arrivals * interval_ns);
        if (due > now) break;
        if (now - due > max_lag_ns) max_lag_ns = now - due;
        arrivals++;
        if (inflight < max_inflight && free_list) start_conn(now);
        else skipped++;
      }
      if (arrivals >= arrivals_total) launching = 0;
      if (!launching && inflight == 0) break;
      if (launching) arm_timer(t0 + (uint64_t)((double)arrivals * interval_ns));
    } else { /* P_HOLD */
      while (launching && !up_announced && up_count + opening < hold_target && opening < conc && free_list &&
             started < (unsigned long long)hold_target * 2 + 100) {
        if (start_conn(now) != 0) break;
      }
      if (!up_announced && up_count >= hold_target) {
        up_announced = 1;
        printf("{\"event\":\"up\",\"up\":%ld,\"elapsed_s\":%.6f}\n", up_count, (double)(now - t0) / 1e9);
        fflush(stdout);
      }
      if (!up_announced && opening == 0 && up_count < hold_target && started >= (unsigned long long)hold_target * 2 + 100) {
        printf("{\"event\":\"up_failed\",\"up\":%ld}\n", up_count);
        fflush(stdout);
        up_announced = 1;
      }
      if (stop_requested || stdin_closed || now >= hard_deadline) break;
    }
    if (now >= hard_deadline + (uint64_t)(timeout_s * 1e9)) break; /* stragglers past every bound */

    int wait_ms = 50;
    if (kind == P_CLOSED && launching) {
      uint64_t left = t_end > now ? t_end - now : 0;
      if (left / 1000000ULL < (uint64_t)wait_ms) wait_ms = (int)(left / 1000000ULL) + 1;
    }
    int n = epoll_wait(ep, evs, 1024, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait failed");
    }
    unsigned long long before = completed;
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &tag_timer) {
        uint64_t expirations;
        ssize_t r = read(timer_fd, &expirations, sizeof expirations);
        (void)r;
        continue;
      }
      if (p == &tag_stdin) {
        char b[256];
        ssize_t r = read(0, b, sizeof b);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          stdin_closed = 1;
          epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        }
        continue;
      }
      struct conn *c = p;
      if (c->st == S_FREE) continue;
      drive(c, evs[i].events);
    }
    now = now_ns();
    if (completed != before) last_done = now;
    sweep_timeouts(now);
  }
  /* throughput counts to the last completion; a run that completed nothing reports its span */
  if (completed == 0 || kind == P_HOLD) last_done = now_ns();
  return (double)(last_done - t0) / 1e9;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t percentile(double p) {
  if (lat_n == 0) return 0;
  unsigned long long rank = (unsigned long long)ceil(p * (double)lat_n);
  if (rank < 1) rank = 1;
  if (rank > lat_n) rank = lat_n;
  return lat[rank - 1];
}

static double parse_num(const char *s, const char *name) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !isfinite(v) || v < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "bad number for %s", name);
    usage(msg);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc < 2) usage("no mode");
  mode_name = argv[1];
  if (!strcmp(mode_name, "tcp-churn")) mode = M_TCP_CHURN;
  else if (!strcmp(mode_name, "tls-full")) mode = M_TLS_FULL, use_tls = 1;
  else if (!strcmp(mode_name, "tls-resume")) mode = M_TLS_RESUME, use_tls = 1;
  else if (!strcmp(mode_name, "latency")) mode = M_LATENCY;
  else if (!strcmp(mode_name, "hold")) mode = M_HOLD, use_tls = 1;
  else usage("unknown mode");

  int port = -1;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) usage("missing value"); i++; } while (0)
    if (!strcmp(a, "--host")) { NEED_VALUE(); snprintf(host_text, sizeof host_text, "%s", v); }
    else if (!strcmp(a, "--port")) { NEED_VALUE(); port = (int)parse_num(v, a); }
    else if (!strcmp(a, "--concurrency")) { NEED_VALUE(); concurrency = (long)parse_num(v, a); }
    else if (!strcmp(a, "--duration")) { NEED_VALUE(); duration_s = parse_num(v, a); }
    else if (!strcmp(a, "--count")) { NEED_VALUE(); count_limit = (unsigned long long)parse_num(v, a); }
    else if (!strcmp(a, "--rate")) { NEED_VALUE(); rate = parse_num(v, a); }
    else if (!strcmp(a, "--max-inflight")) { NEED_VALUE(); max_inflight = (long)parse_num(v, a); }
    else if (!strcmp(a, "--hold")) { NEED_VALUE(); hold_target = (long)parse_num(v, a); }
    else if (!strcmp(a, "--cert")) { NEED_VALUE(); cert_file = v; }
    else if (!strcmp(a, "--timeout")) { NEED_VALUE(); timeout_s = parse_num(v, a); }
    else if (!strcmp(a, "--max-time")) { NEED_VALUE(); max_time_s = parse_num(v, a); }
    else if (!strcmp(a, "--cpu")) { NEED_VALUE(); cpu_pin = (int)parse_num(v, a); }
    else if (!strcmp(a, "--alpn")) offer_alpn = 1;
    else if (!strcmp(a, "--proxy-v2")) send_proxy_v2 = 1;
    else if (!strcmp(a, "--tls")) use_tls = 1;
    else if (!strcmp(a, "--plain")) use_tls = 0;
    else usage("unknown option");
#undef NEED_VALUE
  }
  if (port <= 0 || port > 65535) usage("--port is required (1-65535)");
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host_text, &target.sin_addr) != 1) usage("--host must be an IPv4 address");
  if ((ntohl(target.sin_addr.s_addr) >> 24) != 127) usage("--host must be a loopback address (127.0.0.0/8)");
  if (concurrency < 1 || concurrency > MAX_CONCURRENCY) usage("--concurrency out of range");
  if (duration_s <= 0 || duration_s > MAX_DURATION) usage("--duration out of range");
  if (count_limit > MAX_COUNT) usage("--count out of range");
  if (timeout_s <= 0 || timeout_s > 120) usage("--timeout out of range");
  if (max_time_s <= 0 || max_time_s > 3600) usage("--max-time out of range");
  if (mode == M_LATENCY && (rate <= 0 || rate > MAX_RATE)) usage("latency needs --rate in (0, 1e6]");
  if (max_inflight < 1 || max_inflight > MAX_CONCURRENCY) usage("--max-inflight out of range");
  if (mode == M_HOLD && (hold_target < 1 || hold_target > MAX_HOLD)) usage("hold needs --hold K in [1, 60000]");

  if (cpu_pin >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_pin, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) fprintf(stderr, "loadgen: cannot pin to CPU %d\n", cpu_pin);
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  long need = mode == M_HOLD ? hold_target + concurrency : mode == M_LATENCY ? max_inflight : concurrency;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need + 64) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)need + 64 ? rl.rlim_max : (rlim_t)need + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  pool_size = need;
  pool = calloc((size_t)pool_size, sizeof *pool);
  if (!pool) die("out of memory");
  for (long i = pool_size - 1; i >= 0; i--) {
    pool[i].fd = -1;
    pool[i].free_next = free_list;
    free_list = &pool[i];
  }
  if (mode == M_LATENCY) {
    lat_cap = (unsigned long long)ceil(rate * duration_s) + 16;
    if (lat_cap > MAX_LATENCY_SAMPLES) lat_cap = MAX_LATENCY_SAMPLES;
    lat = malloc(lat_cap * sizeof *lat);
    if (!lat) die("out of memory");
  }
  /* closed-loop modes grow their sample array as they go */
  if (use_tls) tls_init();

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1 failed");
  timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd < 0) die("timerfd_create failed");
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &tag_timer};
  epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &tev);
  if (mode == M_HOLD) {
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &tag_stdin};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) != 0) stdin_closed = 0; /* e.g. /dev/null: signals only */
  }

  uint64_t hard_deadline = now_ns() + (uint64_t)(max_time_s * 1e9);
  int primed = -1;
  if (mode == M_TLS_RESUME) {
    /* One priming connection for the first ticket; not counted. */
    run_phase(P_CLOSED, 1, 1, timeout_s, hard_deadline);
    primed = saved_session != NULL;
    started = completed = resumed = handshakes = errors_total = 0;
    memset(ekind_count, 0, sizeof ekind_count);
  }

  recording = 1;
  double u0 = cpu_seconds(0), s0 = cpu_seconds(1);
  double elapsed;
  switch (mode) {
    case M_LATENCY: elapsed = run_phase(P_OPEN, max_inflight, 0, duration_s, hard_deadline); break;
    case M_HOLD: elapsed = run_phase(P_HOLD, concurrency, 0, max_time_s, hard_deadline); break;
    default: elapsed = run_phase(P_CLOSED, concurrency, count_limit, duration_s, hard_deadline); break;
  }
  double cu = cpu_seconds(0) - u0, cs = cpu_seconds(1) - s0;
  if (elapsed <= 0) elapsed = 1e-9;

  printf("{\"mode\":\"%s\",\"tls\":%s,\"openssl\":\"%s\",\"concurrency\":%ld,\"started\":%llu,\"completed\":%llu,"
         "\"errors\":%llu,\"error_kinds\":{",
         mode_name, use_tls ? "true" : "false", OpenSSL_version(OPENSSL_VERSION), concurrency, started, completed, errors_total);
  int first = 1;
  for (int k = 0; k < E_NKINDS; k++) {
    if (!ekind_count[k]) continue;
    printf("%s\"%s\":%llu", first ? "" : ",", ekind_name[k], ekind_count[k]);
    first = 0;
  }
  printf("},\"elapsed_s\":%.6f,\"conns_per_s\":%.3f,\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"cpu_util\":%.4f",
         elapsed, (double)completed / elapsed, cu, cs, (cu + cs) / elapsed);
  if (use_tls) {
    printf(",\"handshakes\":%llu,\"resumed\":%llu,\"tickets\":%llu,\"resumed_fraction\":%.6f", handshakes, resumed, tickets,
           handshakes ? (double)resumed / (double)handshakes : 0.0);
  }
  if (primed >= 0) printf(",\"primed\":%s", primed ? "true" : "false");
  if (mode == M_LATENCY) printf(",\"rate\":%.3f,\"skipped\":%llu,\"max_lag_us\":%.1f", rate, skipped, (double)max_lag_ns / 1e3);
  if (mode != M_HOLD) {
    /* connect() -> first byte; in the closed-loop modes this includes the wait in the
       server's accept queue, so it is context there, not a latency measurement */
    if (lat_n) qsort(lat, lat_n, sizeof *lat, cmp_u32);
    double sum = 0;
    for (unsigned long long i = 0; i < lat_n; i++) sum += lat[i];
    printf(",\"latency_us\":{\"n\":%llu,\"mean\":%.1f,\"p50\":%u,\"p90\":%u,\"p99\":%u,\"p999\":%u,\"max\":%u}", lat_n,
           lat_n ? sum / (double)lat_n : 0.0, percentile(0.5), percentile(0.9), percentile(0.99), percentile(0.999),
           lat_n ? lat[lat_n - 1] : 0);
  }
  if (mode == M_HOLD) printf(",\"hold\":%ld,\"up\":%ld,\"dropped\":%llu", hold_target, up_count, dropped);
  printf("}\n");
  fflush(stdout);
  return 0;
}

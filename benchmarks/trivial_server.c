/*
 * trivial_server: the smallest server the load generator can be pointed at, so that the
 * harness can report the load generator's own ceiling in the same run (benchmarks/run.ts).
 *
 * One thread, epoll, accept4() in a loop until EAGAIN, on 127.0.0.1 only.
 *
 *   trivial_server [--tls CERT KEY] [--hold] [--cpu N]
 *
 *   plain:  accept, write one byte 'x', close
 *   --tls:  accept, TLS 1.3 handshake (OpenSSL), write 'x', close_notify, close
 *   --hold: write 'x' and keep the connection open until the peer closes it
 *
 * It speaks the same small protocol as benchmarks/server.ts:
 *   stdout, first line: {"type":"ready","port":P,"pid":N,...}
 *   stdin lines: "mark" -> resets the CPU and connection counters, answers {"type":"mark"}
 *                "report" -> {"type":"report","cpuUserUs":..,"cpuSystemUs":..,"rss":..,"connections":..}
 *                "gc" -> {"type":"gc"} (nothing to collect); "exit" or EOF -> exits
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
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
#include <unistd.h>

struct conn {
  int fd;
  SSL *ssl;
  int state; /* 0 handshake, 1 write, 2 holding */
};

static SSL_CTX *ctx;
static int hold;
static int ep;
static int listen_fd;
static unsigned long long connections;
static struct rusage mark_ru;
static char tag_listen, tag_stdin;

static long long us_of(const struct timeval *tv) { return (long long)tv->tv_sec * 1000000LL + tv->tv_usec; }

static long rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

static void finish(struct conn *c) {
  if (c->ssl) SSL_free(c->ssl);
  close(c->fd);
  free(c);
}

static void drive(struct conn *c) {
  char buf[256];
  if (c->state == 0) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
      ERR_clear_error();
      finish(c);
      return;
    }
    c->state = 1;
  }
  if (c->state == 1) {
    int r = c->ssl ? SSL_write(c->ssl, "x", 1) : (int)write(c->fd, "x", 1);
    if (r != 1) {
      if (c->ssl) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        ERR_clear_error();
      } else if (errno == EAGAIN) {
        return;
      }
      finish(c);
      return;
    }
    connections++;
    if (!hold) {
      if (c->ssl) SSL_shutdown(c->ssl); /* close_notify, as Node's end() sends */
      finish(c);
      return;
    }
    c->state = 2;
  }
  /* holding: read until the peer closes */
  for (;;) {
    int r = c->ssl ? SSL_read(c->ssl, buf, sizeof buf) : (int)read(c->fd, buf, sizeof buf);
    if (r > 0) continue;
    if (c->ssl) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
      ERR_clear_error();
    } else if (r < 0 && errno == EAGAIN) {
      return;
    }
    finish(c);
    return;
  }
}

static void accept_all(void) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN ends the batch; anything else: try again on the next wake-up */
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->state = 1;
    /* The ticket, the byte and close_notify go out as separate writes: without NODELAY,
       Nagle holds the later ones until the peer's (delayed) ACK arrives. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx) {
      c->ssl = SSL_new(ctx);
      SSL_set_fd(c->ssl, fd);
      SSL_set_accept_state(c->ssl);
      c->state = 0;
    }
    if (!ctx && !hold) { /* plain churn: no need to involve epoll at all */
      drive(c);
      continue;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      finish(c);
      continue;
    }
    drive(c);
  }
}

static void command(const char *line) {
  if (!strcmp(line, "mark")) {
    getrusage(RUSAGE_SELF, &mark_ru);
    connections = 0;
    printf("{\"type\":\"mark\"}\n");
  } else if (!strcmp(line, "report")) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"type\":\"report\",\"cpuUserUs\":%lld,\"cpuSystemUs\":%lld,\"rss\":%ld,\"connections\":%llu}\n",
           us_of(&ru.ru_utime) - us_of(&mark_ru.ru_utime), us_of(&ru.ru_stime) - us_of(&mark_ru.ru_stime), rss_bytes(),
           connections);
  } else if (!strcmp(line, "gc")) {
    printf("{\"type\":\"gc\"}\n");
  } else if (!strcmp(line, "exit")) {
    exit(0);
  } else {
    printf("{\"type\":\"error\",\"message\":\"unknown command\"}\n");
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *cert = NULL, *key = NULL;
  int cpu = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tls") && i + 2 < argc) {
      cert = argv[++i];
      key = argv[++i];
    } else if (!strcmp(argv[i], "--hold")) {
      hold = 1;
    } else if (!strcmp(argv[i], "--cpu") && i + 1 < argc) {
      cpu = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: trivial_server [--tls CERT KEY] [--hold] [--cpu N]\n");
      return 2;
    }
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (cert) {
    ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
      fprintf(stderr, "trivial_server: cannot load %s / %s\n", cert, key);
      return 1;
    }
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"bench", 5);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (hold) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  }

  listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listen_fd, 1024) != 0) {
    perror("trivial_server: listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd, (struct sockaddr *)&addr, &len);

  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &tag_listen};
  epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev);
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &tag_stdin};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
  getrusage(RUSAGE_SELF, &mark_ru);
  printf("{\"type\":\"ready\",\"port\":%d,\"pid\":%d,\"server\":\"trivial-c\",\"openssl\":\"%s\"}\n", ntohs(addr.sin_port),
         (int)getpid(), OpenSSL_version(OPENSSL_VERSION));
  fflush(stdout);

  char line[256];
  size_t line_len = 0;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &tag_listen) {
        accept_all();
      } else if (p == &tag_stdin) {
        char buf[256];
        ssize_t r = read(0, buf, sizeof buf);
        if (r <= 0) return 0; /* the harness went away */
        for (ssize_t k = 0; k < r; k++) {
          if (buf[k] == '\n') {
            line[line_len] = '\0';
            command(line);
            line_len = 0;
          } else if (line_len + 1 < sizeof line) {
            line[line_len++] = buf[k];
          }
        }
      } else {
        drive(p);
      }
    }
  }
}

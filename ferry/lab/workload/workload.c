/*
 * Ferry lab workload: PID 1 of a lab guest. Fills memory with a verifiable pattern, keeps
 * dirtying it at a set rate, checks it continuously and reports on the serial console, so a
 * live migration that loses or corrupts a single page is caught.
 *
 * Parameters (kernel command line, read from /proc/cmdline):
 *   ferry.fill=MiB      memory to fill and keep verified (default 64)
 *   ferry.dirty=MiB/s   rate of page rewrites (default 0)
 *   ferry.spot=N        pages spot-checked each second (default 256)
 *   ferry.cpubound=1    dirty like a compute-bound program (default 0): spin between writes
 *                       instead of sleeping, and drop the writes due while the vCPU did not
 *                       run (a throttled or descheduled vCPU writes proportionally less).
 *                       Default pacing catches up on them, as a rate-limited writer does, so
 *                       QEMU's CPU throttle only slows it once it takes its idle time away.
 *
 * Pattern: each 4 KiB page holds word 0 = page index, word 1 = generation, words 2..511 =
 * seed(run, index, generation) ^ (j * odd constant). A separate array holds each page's
 * expected generation. A page whose words disagree with each other is CORRUPT; a page that is
 * self-consistent but carries an older generation than expected is LOST (a rewrite that did
 * not reach this memory, e.g. a dirty page a migration failed to resend).
 *
 * Console protocol (one line each, prefix "FERRY "):
 *   FERRY START run=R fill_mib=F dirty_mib_s=D pages=P spot=S
 *   FERRY READY run=R fill_ms=T
 *   FERRY HB run=R seq=N ms=T writes=W spot_pages=C bad=B lost=L scans=K
 *       once per second (guest monotonic clock); counters are totals since START
 *   FERRY BAD run=R page=I kind=corrupt|lost expected_gen=G found_gen=H
 *   FERRY SCAN run=R scan=K pages=P bad=B lost=L ms=T
 * A full scan runs when the byte 'S' arrives on the console (ferry.lab sends it through
 * libvirt's console stream).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8u)
#define TICKS_PER_SEC 10
#define MAX_BAD_LINES_PER_SEC 16
#define MUL 0x9E3779B97F4A7C15ull

static uint8_t *area;
static uint32_t *gens;
static uint64_t npages, run_id, rng_state;
static uint64_t writes, spot_pages, bad_total, lost_total, scans;
static unsigned bad_lines_this_sec;
static int console_fd = 1;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(console_fd, buf + off, n - off);
        if (w < 0) { if (errno == EINTR || errno == EAGAIN) continue; return; }
        off += w;
    }
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += MUL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t seed_of(uint64_t idx, uint32_t gen) { return mix(run_id ^ mix(idx ^ ((uint64_t)gen << 40))); }

static void write_page(uint64_t idx, uint32_t gen) {
    uint64_t *p = (uint64_t *)(area + idx * PAGE);
    uint64_t s = seed_of(idx, gen);
    p[0] = idx;
    p[1] = gen;
    for (unsigned j = 2; j < WORDS; j++) p[j] = s ^ (j * MUL);
    gens[idx] = gen;
}

/* 0 = good, 1 = corrupt, 2 = lost (self-consistent but older than expected). */
static int check_page(uint64_t idx) {
    const uint64_t *p = (const uint64_t *)(area + idx * PAGE);
    uint32_t want = gens[idx];
    int kind = 0;
    if (p[0] != idx || p[1] > 0xffffffffull) {
        kind = 1;
    } else {
        uint64_t s = seed_of(idx, (uint32_t)p[1]);
        for (unsigned j = 2; j < WORDS; j++)
            if (p[j] != (s ^ (j * MUL))) { kind = 1; break; }
        if (!kind && (uint32_t)p[1] != want) kind = (uint32_t)p[1] < want ? 2 : 1;
    }
    if (kind) {
        if (kind == 1) bad_total++; else lost_total++;
        if (bad_lines_this_sec < MAX_BAD_LINES_PER_SEC) {
            bad_lines_this_sec++;
            say("FERRY BAD run=%016llx page=%llu kind=%s expected_gen=%u found_gen=%llu",
                (unsigned long long)run_id, (unsigned long long)idx,
                kind == 1 ? "corrupt" : "lost", want, (unsigned long long)p[1]);
        }
    }
    return kind;
}

static void full_scan(void) {
    uint64_t t0 = now_ms(), bad0 = bad_total, lost0 = lost_total;
    for (uint64_t i = 0; i < npages; i++) check_page(i);
    scans++;
    say("FERRY SCAN run=%016llx scan=%llu pages=%llu bad=%llu lost=%llu ms=%llu",
        (unsigned long long)run_id, (unsigned long long)scans, (unsigned long long)npages,
        (unsigned long long)(bad_total - bad0), (unsigned long long)(lost_total - lost0),
        (unsigned long long)(now_ms() - t0));
}

static unsigned long param(const char *cmdline, const char *key, unsigned long dflt) {
    size_t kl = strlen(key);
    for (const char *p = cmdline; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p == cmdline || p[-1] == ' ') && p[kl] == '=') return strtoul(p + kl + 1, NULL, 10);
    }
    return dflt;
}

static void setup_console(void) {
    mkdir("/proc", 0755);
    mkdir("/dev", 0755);
    mount("proc", "/proc", "proc", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    int fd = open("/dev/ttyS0", O_RDWR | O_NOCTTY);
    if (fd < 0) fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd >= 0) console_fd = fd;
    /* Byte-at-a-time input without echo, so a single 'S' from the host triggers a scan. */
    struct termios t;
    if (tcgetattr(console_fd, &t) == 0) {
        t.c_lflag &= ~(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
        t.c_iflag &= ~(ICRNL | IXON);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        tcsetattr(console_fd, TCSANOW, &t);
    }
}

int main(void) {
    char cmdline[4096] = "";
    setup_console();
    int cfd = open("/proc/cmdline", O_RDONLY);
    if (cfd >= 0) {
        ssize_t n = read(cfd, cmdline, sizeof cmdline - 1);
        if (n > 0) cmdline[n] = 0;
        close(cfd);
    }
    unsigned long fill = param(cmdline, "ferry.fill", 64);
    unsigned long dirty = param(cmdline, "ferry.dirty", 0);
    unsigned long spot = param(cmdline, "ferry.spot", 256);
    unsigned long cpubound = param(cmdline, "ferry.cpubound", 0);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    run_id = mix((uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 48));
    rng_state = run_id | 1;

    npages = (uint64_t)fill * (1024u * 1024u / PAGE);
    if (npages == 0) npages = 1;
    say("FERRY START run=%016llx fill_mib=%lu dirty_mib_s=%lu pages=%llu spot=%lu cpubound=%lu",
        (unsigned long long)run_id, fill, dirty, (unsigned long long)npages, spot, cpubound);
    gens = calloc(npages, sizeof *gens);
    area = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!gens || area == MAP_FAILED) {
        say("FERRY FAIL run=%016llx reason=cannot-allocate-%lu-MiB", (unsigned long long)run_id, fill);
        for (;;) pause();
    }
    uint64_t t0 = now_ms();
    for (uint64_t i = 0; i < npages; i++) write_page(i, 1);
    say("FERRY READY run=%016llx fill_ms=%llu", (unsigned long long)run_id,
        (unsigned long long)(now_ms() - t0));

    int in_fd = console_fd;
    fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
    uint64_t pages_per_sec = (uint64_t)dirty * (1024u * 1024u / PAGE);
    uint64_t start = now_ms(), next_tick = start, next_hb = start + 1000, seq = 0;
    uint64_t tick = 0, dirty_done = 0;
    uint64_t start_us = now_us(), backlog = pages_per_sec / 500 + 1;   /* 2 ms of writes */
    for (;;) {
        uint64_t now = now_ms();
        if (cpubound && dirty > 0) {
            /* Writes due by the clock; a backlog longer than 2 ms means the vCPU did not run. */
            uint64_t due = pages_per_sec * (now_us() - start_us) / 1000000u;
            if (due > dirty_done + backlog) dirty_done = due - backlog;
            while (dirty_done < due) {
                uint64_t idx = rnd() % npages;
                write_page(idx, gens[idx] + 1);
                writes++;
                dirty_done++;
            }
        } else if (now >= next_tick) {
            tick++;
            /* Dirty on a schedule so the total written tracks rate * elapsed time. */
            uint64_t due = pages_per_sec * tick / TICKS_PER_SEC;
            while (dirty_done < due) {
                uint64_t idx = rnd() % npages;
                write_page(idx, gens[idx] + 1);
                writes++;
                dirty_done++;
            }
            next_tick += 1000 / TICKS_PER_SEC;
            if (now > next_tick + 1000) { /* far behind (e.g. paused): do not try to catch up */
                next_tick = now + 1000 / TICKS_PER_SEC;
                dirty_done = due;
            }
        }
        if (now >= next_hb) {
            bad_lines_this_sec = 0;
            for (unsigned long k = 0; k < spot; k++) { check_page(rnd() % npages); spot_pages++; }
            seq++;
            say("FERRY HB run=%016llx seq=%llu ms=%llu writes=%llu spot_pages=%llu bad=%llu lost=%llu scans=%llu",
                (unsigned long long)run_id, (unsigned long long)seq, (unsigned long long)(now - start),
                (unsigned long long)writes, (unsigned long long)spot_pages,
                (unsigned long long)bad_total, (unsigned long long)lost_total, (unsigned long long)scans);
            next_hb += 1000;
            if (now > next_hb) next_hb = now + 1000;
        }
        uint64_t wake = next_tick < next_hb ? next_tick : next_hb;
        now = now_ms();
        int timeout = wake > now ? (int)(wake - now) : 0;
        if (cpubound && dirty > 0) timeout = 0;   /* spin: never give the vCPU's time away */
        struct pollfd pfd = {.fd = in_fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout) > 0 && (pfd.revents & POLLIN)) {
            char c[64];
            ssize_t n = read(in_fd, c, sizeof c);
            for (ssize_t i = 0; i < n; i++)
                if (c[i] == 'S') full_scan();
        }
    }
}

/* Paced UDP sender and batched receiver for the kernel baseline (`pseudonic bench baseline`).
 *
 * Plain C loaded with ctypes, so there is no Python API here and no Python runs per packet:
 * ctypes drops the GIL for the whole call. The pacing matches the pseudo-NIC engine's send
 * loop (absolute CLOCK_MONOTONIC deadlines t0 + k*interval, spin-waited) so the kernel's
 * receive path is measured the same way as ours.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define PNB_BATCH 64
#define PNB_BUF 2048 /* > MTU 1500, so no datagram is truncated */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int pnb_send(int fd, const uint8_t *payload, uint32_t len, uint32_t count, uint64_t interval_ns,
             uint64_t *start_ns, uint64_t *end_ns)
{
    if (len < 4 || payload == NULL)
        return -EINVAL;
    /* A private copy: the caller's buffer stays untouched while we stamp sequence numbers. */
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return -ENOMEM;
    memcpy(buf, payload, len);

    uint32_t sent = 0;
    int rc = 0;
    uint64_t t0 = now_ns();
    *start_ns = t0;
    *end_ns = t0;
    for (uint32_t k = 0; k < count; k++) {
        /* Absolute deadlines: a late send does not push every later one back (no drift). */
        uint64_t deadline = t0 + (uint64_t)k * interval_ns;
        while (interval_ns != 0 && now_ns() < deadline)
            ; /* spin: a sleep's wake-up latency is far longer than the intervals we test */
        memcpy(buf, &k, sizeof k); /* sequence number, host byte order: both ends share the host */
        for (;;) {
            ssize_t n = send(fd, buf, len, 0);
            if (n >= 0)
                break;
            /* Not sent, so not counted: retry, and let the lateness show in the duration. */
            if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS)
                continue;
            rc = -errno;
            break;
        }
        if (rc != 0)
            break;
        sent++;
    }
    *end_ns = now_ns();
    free(buf);
    return rc != 0 ? rc : (int)sent;
}

int64_t pnb_recv(int fd, uint32_t count, uint64_t idle_timeout_ns, uint64_t *bytes)
{
    struct mmsghdr msgs[PNB_BATCH];
    struct iovec iovs[PNB_BATCH];
    uint64_t got = 0, total = 0;
    /* Heap, not stack: 128 KiB would crowd a small thread stack. */
    uint8_t (*bufs)[PNB_BUF] = malloc(PNB_BATCH * PNB_BUF);
    if (bufs == NULL)
        return -ENOMEM;
    int64_t rc = 0;
    struct timespec idle = {
        .tv_sec = (time_t)(idle_timeout_ns / 1000000000ull),
        .tv_nsec = (long)(idle_timeout_ns % 1000000000ull),
    };

    while (got < count) {
        unsigned int want = count - got < PNB_BATCH ? (unsigned int)(count - got) : PNB_BATCH;
        for (unsigned int i = 0; i < want; i++) {
            iovs[i].iov_base = bufs[i];
            iovs[i].iov_len = PNB_BUF;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        /* Non-blocking batch read, then ppoll for the idle timeout: the timeout restarts at every
         * datagram, which SO_RCVTIMEO with a blocking recvmmsg would not guarantee per batch. */
        int n = recvmmsg(fd, msgs, want, MSG_DONTWAIT, NULL);
        if (n > 0) {
            for (int i = 0; i < n; i++)
                total += msgs[i].msg_len;
            got += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            if (got == 0)
                rc = -errno;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = ppoll(&p, 1, &idle, NULL);
        if (r == 0)
            break; /* idle: nothing more is coming */
        if (r < 0 && errno != EINTR) {
            if (got == 0)
                rc = -errno;
            break;
        }
    }
    free(bufs);
    *bytes = total;
    return rc != 0 ? rc : (int64_t)got;
}

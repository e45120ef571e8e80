/* Paced sender and batched UDP receiver for the kernel baseline (`pseudonic bench baseline`).
 *
 * Plain C loaded with ctypes, so there is no Python API here and no Python runs per packet:
 * ctypes drops the GIL for the whole call. The pacing matches the pseudo-NIC engine's send
 * loop (absolute CLOCK_MONOTONIC deadlines t0 + k*interval, spin-waited) so the kernel's
 * receive path is measured the same way as ours. The sender sends whatever buffer it is given
 * on whatever socket it is given: complete Ethernet frames on an AF_PACKET socket (the
 * baseline's choice: it skips the sender's own UDP/IP stack) or UDP payloads on a connected UDP
 * socket. When behind, it sends what is due in one sendmmsg (see pnb_send).
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

/* What one pnb_send did. Mirrored by a ctypes.Structure in baseline.py: keep the two in step. */
struct pnb_send_stats {
    uint64_t start_ns;    /* CLOCK_MONOTONIC at the first deadline (t0) */
    uint64_t end_ns;      /* ... after the last send returned */
    uint64_t syscalls;    /* send and sendmmsg calls made, failed and retried ones included */
    uint64_t batch_calls; /* of which sendmmsg: the sender was behind, more than one buffer was due */
    uint64_t max_batch;   /* the most buffers one call sent */
    uint64_t refused;     /* buffers the kernel refused with ENOBUFS: counted as sent (and lost), not resent */
};

/* Send `count` copies of `buf` (`len` bytes), copy k due at t0 + k*interval_ns (interval 0: all due at once).
 *
 * On time, one send() per deadline, as the engine paces. Behind (more than one deadline has passed:
 * the send path is slower than the pace), every copy due now, up to PNB_BATCH, goes in one sendmmsg,
 * so the per-call cost is paid once per batch and the sender can catch up. Copy k carries the
 * sequence number first_seq + k (mod 2^32, host byte order: both ends share the host) in the 4 bytes
 * at `seq_off`; the caller's buffer is left alone. The socket must need no address (a connected UDP
 * socket, or an AF_PACKET socket bound to its device, given whole frames).
 *
 * ENOBUFS means the path below refused the buffer after it left the socket (a veth whose peer's
 * backlog is full: a receive-side drop), which a UDP socket does not even report: the buffer counts as
 * sent and lost, never resent, or a full receiver would pace the sender. A short sendmmsg stopped at
 * such a failure, whose error the kernel does not return: the buffer it stopped at counts the same
 * way (a lasting error shows again on the next call). Returns how many were sent, or -errno. */
int pnb_send(int fd, const uint8_t *buf, uint32_t len, uint32_t seq_off, uint32_t first_seq, uint32_t count,
             uint64_t interval_ns, struct pnb_send_stats *st)
{
    if (buf == NULL || st == NULL || len < 4 || seq_off > len - 4)
        return -EINVAL;
    memset(st, 0, sizeof *st);
    /* Private copies, one per batch slot: the caller's buffer stays untouched while we stamp
     * sequence numbers, and a batch's buffers each keep their own. */
    uint8_t *bufs = malloc((size_t)PNB_BATCH * len);
    if (bufs == NULL)
        return -ENOMEM;
    struct mmsghdr msgs[PNB_BATCH];
    struct iovec iovs[PNB_BATCH];
    memset(msgs, 0, sizeof msgs);
    for (unsigned int i = 0; i < PNB_BATCH; i++) {
        memcpy(bufs + (size_t)i * len, buf, len);
        iovs[i].iov_base = bufs + (size_t)i * len;
        iovs[i].iov_len = len;
        msgs[i].msg_hdr.msg_iov = &iovs[i]; /* no msg_name: connected, or bound to its device */
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    uint32_t sent = 0;
    int rc = 0;
    uint64_t t0 = now_ns();
    st->start_ns = t0;
    while (sent < count) {
        /* Absolute deadlines: a late send does not push every later one back (no drift). */
        uint64_t deadline = t0 + (uint64_t)sent * interval_ns;
        uint64_t t;
        while ((t = now_ns()) < deadline)
            ; /* spin: a sleep's wake-up latency is far longer than the intervals we test */
        /* Due now: every k with t0 + k*interval <= t. At least `sent` itself, as t >= its deadline. */
        uint64_t due = interval_ns == 0 ? count - sent : (t - t0) / interval_ns + 1 - sent;
        if (due > count - sent)
            due = count - sent;
        if (due > PNB_BATCH)
            due = PNB_BATCH;
        for (uint32_t i = 0; i < (uint32_t)due; i++) {
            uint32_t seq = first_seq + sent + i;
            memcpy(bufs + (size_t)i * len + seq_off, &seq, sizeof seq);
        }
        int n;
        st->syscalls++;
        if (due == 1) {
            n = send(fd, bufs, len, 0) < 0 ? -1 : 1;
        } else {
            st->batch_calls++;
            n = sendmmsg(fd, msgs, (unsigned int)due, 0);
        }
        if (n < 0) {
            if (errno == ENOBUFS) {
                n = 0; /* the first one refused: counted below */
            } else if (errno == EINTR || errno == EAGAIN) {
                continue; /* not sent, so not counted: retry, and let the lateness show in the duration */
            } else {
                rc = -errno;
                break;
            }
        }
        if ((uint64_t)n > st->max_batch)
            st->max_batch = (uint64_t)n;
        if ((uint64_t)n < due) {
            /* Stopped at buffer n (refused, see above): sent and lost. */
            st->refused++;
            n++;
        }
        sent += (uint32_t)n;
    }
    st->end_ns = now_ns();
    free(bufs);
    return rc != 0 ? rc : (int)sent;
}

/* Receive up to `count` datagrams of this run: those whose first 4 bytes hold a sequence number
 * first_seq + k with k < span (host byte order, as pnb_send stamps them). Others (a late datagram of an
 * earlier run, anything else on the port) are read and counted in *stray, not in the result. Gives up
 * after `idle_timeout_ns` without a datagram. *bytes: the payload bytes of this run's datagrams. Returns
 * how many of this run's datagrams arrived, or -errno. */
int64_t pnb_recv(int fd, uint32_t count, uint32_t first_seq, uint32_t span, uint64_t idle_timeout_ns,
                 uint64_t *bytes, uint64_t *stray)
{
    struct mmsghdr msgs[PNB_BATCH];
    struct iovec iovs[PNB_BATCH];
    uint64_t got = 0, total = 0, others = 0;
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
            for (int i = 0; i < n; i++) {
                uint32_t seq = 0;
                if (msgs[i].msg_len >= sizeof seq)
                    memcpy(&seq, bufs[i], sizeof seq);
                if (msgs[i].msg_len >= sizeof seq && seq - first_seq < span) {
                    total += msgs[i].msg_len;
                    got++;
                } else {
                    others++;
                }
            }
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
    *stray = others;
    return rc != 0 ? rc : (int64_t)got;
}

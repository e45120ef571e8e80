/*
 * pnic_twocore.c -- the reference a small-packet rate is compared with: a
 * bare ring between two cores, nothing of pseudonic's in it.  A producer on
 * one core copies each frame into a buffer, writes its 16-byte descriptor and
 * rings a doorbell (the ring's tail) per packet; a consumer on the other spins
 * on the doorbell, copies the frame out and hands the descriptor back.  What
 * it costs a packet is what any two processes handing frames over shared
 * memory on this machine pay: mostly cache lines crossing between the cores.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "pnic_cpu.h"
#include "pnic_engine.h"

#define REF_RING 256u   /* descriptors, as the e1000's default ring */
#define REF_BUF 2048u   /* bytes a buffer */

struct ref_desc {
    uint64_t addr;
    uint16_t length;
    uint8_t status; /* 1: written, the consumer's */
    uint8_t pad[5];
};

struct ref_ring {
    _Alignas(PNIC_LINE_PAIR) uint64_t tail; /* the doorbell: descriptors published */
    _Alignas(PNIC_LINE_PAIR) uint64_t head; /* descriptors taken back */
    _Alignas(PNIC_LINE_PAIR) struct ref_desc desc[REF_RING];
    uint8_t *bufs;
    size_t size;
    uint64_t count;
    int cores[2];
    uint64_t first_ns, last_ns;
};

static void pin(int core)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

static void *produce(void *arg)
{
    struct ref_ring *r = arg;
    pin(r->cores[0]);
    uint8_t frame[PNIC_MAX_FRAME];
    memset(frame, 0x5a, r->size);
    for (uint64_t i = 0; i < r->count; i++) {
        while (i - __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) >= REF_RING)
            cpu_relax();
        const uint32_t k = (uint32_t)(i % REF_RING);
        memcpy(r->bufs + (size_t)k * REF_BUF, frame, r->size);
        r->desc[k].length = (uint16_t)r->size;
        __atomic_store_n(&r->desc[k].status, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&r->tail, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void *consume(void *arg)
{
    struct ref_ring *r = arg;
    pin(r->cores[1]);
    uint8_t skb[PNIC_MAX_FRAME];
    for (uint64_t i = 0; i < __atomic_load_n(&r->count, __ATOMIC_RELAXED); i++) {
        while (__atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) <= i)
            cpu_relax();
        const uint32_t k = (uint32_t)(i % REF_RING);
        if (i == 0)
            r->first_ns = pnic_now_ns();
        memcpy(skb, r->bufs + (size_t)k * REF_BUF, r->desc[k].length);
        __asm__ __volatile__("" : : "r"(skb) : "memory");
        __atomic_store_n(&r->desc[k].status, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&r->head, i + 1, __ATOMIC_RELEASE);
    }
    r->last_ns = pnic_now_ns();
    return NULL;
}

uint64_t pnic_twocore_ring(size_t size, uint64_t count, int producer_core, int consumer_core)
{
    if (size == 0 || size > REF_BUF || count < 2)
        return 0;
    struct ref_ring *r = aligned_alloc(PNIC_LINE_PAIR, sizeof(*r));
    uint8_t *bufs = aligned_alloc(PNIC_PAGE, (size_t)REF_RING * REF_BUF);
    uint64_t span = 0;
    if (r != NULL && bufs != NULL) {
        memset(r, 0, sizeof(*r));
        memset(bufs, 0, (size_t)REF_RING * REF_BUF);
        r->bufs = bufs;
        r->size = size;
        r->count = count;
        r->cores[0] = producer_core;
        r->cores[1] = consumer_core;
        pthread_t p, c;
        if (pthread_create(&c, NULL, consume, r) == 0) {
            if (pthread_create(&p, NULL, produce, r) == 0) {
                pthread_join(p, NULL);
                pthread_join(c, NULL);
                span = r->last_ns - r->first_ns;
            } else {
                __atomic_store_n(&r->count, 0, __ATOMIC_RELAXED); /* the consumer has nothing to wait for */
                pthread_join(c, NULL);
            }
        }
    }
    free(r);
    free(bufs);
    return span;
}

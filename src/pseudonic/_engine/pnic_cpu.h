/* pnic_cpu.h -- the two CPU hints the spinning loops use, stated once. */
#ifndef PNIC_CPU_H
#define PNIC_CPU_H

#include <stdint.h>

/* In a spin-wait: let the sibling hyperthread run, and save power. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Bring a line into this core's cache for writing (PREFETCHW on x86-64,
 * whatever the compiler was told about the target). */
static inline void prefetch_for_write(const uint8_t *p)
{
#if defined(__x86_64__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const volatile uint8_t *)p));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

#endif /* PNIC_CPU_H */

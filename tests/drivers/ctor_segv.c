/* A C driver whose constructor crashes when it is opened. */
__attribute__((constructor)) static void crash(void) { *(volatile int *)0 = 1; }

/* A C driver whose constructor ends the process with status 0 when it is opened. */
#include <stdlib.h>

__attribute__((constructor)) static void leave(void) { exit(0); }

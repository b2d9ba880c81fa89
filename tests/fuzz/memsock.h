/* memsock.h — in-memory client connections and a virtual clock for the
 * whole-session fuzz targets (memsock.c). Every fuzz target is linked
 * with -Wl,--wrap for recv, send, ppoll, close and clock_gettime: the
 * server's calls on a descriptor made by ms_open are served from memory
 * (no system call), every other descriptor goes to the real call; while
 * ms_clock_on is set, CLOCK_MONOTONIC (and the process CPU clock) read
 * ms_now_ms, which only the harness moves. postie's own code is
 * unchanged: the connection layer's reads, writes, would-blocks and end
 * of input all run as over a socket. */
#ifndef POSTIE_FUZZ_MEMSOCK_H
#define POSTIE_FUZZ_MEMSOCK_H

#include <stddef.h>
#include <stdint.h>

/* The virtual clock (ms) and whether it is in use: a harness switches it
 * on only inside LLVMFuzzerTestOneInput, libFuzzer's own timing outside
 * it keeps the real clock. */
extern int64_t ms_now_ms;
extern int ms_clock_on;

/* A new connection's server side: a real descriptor (a duplicate of
 * /dev/null, so its number is not given to a file meanwhile) that recv,
 * send and ppoll treat as a non-blocking stream socket; the server's
 * close of it ends the connection. -1 when all are in use. */
int ms_open(void);
/* Client bytes for fd: at most len (the room left in its 64 KiB input
 * queue) are queued; returns how many, -1 when fd is not a memsock. */
long ms_put(int fd, const void *data, size_t len);
/* The client's end of input (shutdown SHUT_WR): recv returns 0 once the
 * queue is empty. */
void ms_shut(int fd);
/* The client reads what the server sent (it is thrown away): the server
 * may send `room` more bytes before send would block (SIZE_MAX: no
 * limit). */
void ms_drain(int fd, size_t room);
/* The client is gone: the server's send fails with EPIPE, recv sees the
 * end of input after what is queued. */
void ms_hangup(int fd);

#endif

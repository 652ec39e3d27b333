/* cl_appendbuf.h - the ordered append buffer under the chronicle writer.
 *
 * Records are (timestamp, payload) pairs of u64; the payload means whatever
 * the caller wants (the chronicle writer stores a row index).  Any number of
 * threads may push.  Every `window` records the buffer seals a window: it
 * sorts the pending records by (timestamp, arrival order) and moves them to a
 * ready queue, which the owner drains.  Sealing depends only on the count of
 * records, never on wall-clock time, so the same input always produces the
 * same windows.  A record older than the last sealed timestamp is refused
 * with CL_ERR_ORDER: the sealed stream is monotonic across windows.
 *
 * Ownership: cl_appendbuf_new allocates the buffer and returns it through
 * *out; the caller owns it and releases it with cl_appendbuf_free.  All other
 * pointers are owned by the caller and only read or written for the call.
 * Storage is allocated up front (2 windows); the ready queue grows only when
 * the owner does not drain it.
 */
#ifndef CL_APPENDBUF_H
#define CL_APPENDBUF_H

#include <stddef.h>
#include <stdint.h>
#include "cl_status.h"

typedef struct cl_appendbuf cl_appendbuf;

cl_status cl_appendbuf_new(size_t window, cl_appendbuf **out);
void cl_appendbuf_free(cl_appendbuf *b);

/* Push one record; payload NULL stores the record's arrival number.  On
 * CL_ERR_ORDER nothing is stored and *floor (if not NULL) receives the last
 * sealed timestamp the record fell below.  *sealed (if not NULL) is set to 1
 * when this push completed a window, else 0. */
cl_status cl_appendbuf_push(cl_appendbuf *b, uint64_t ts, const uint64_t *payload,
                            uint64_t *floor, int *sealed);

/* Push n records; payload may be NULL, in which case each payload is the
 * record's arrival number (see cl_appendbuf_count).  Records are taken in
 * order; on CL_ERR_ORDER the records before the bad one are stored,
 * *n_done says how many, and *floor receives the timestamp they fell below. */
cl_status cl_appendbuf_push_many(cl_appendbuf *b, const uint64_t *ts,
                                 const uint64_t *payload, size_t n,
                                 size_t *n_done, uint64_t *floor);

/* Seal the pending records now, even if fewer than a window (a flush). */
cl_status cl_appendbuf_seal(cl_appendbuf *b);

/* Copy up to cap sealed records, oldest first, to ts_out/payload_out without
 * removing them; cl_appendbuf_consume(n) then removes the first n.  Split in
 * two so a consumer that fails (a sink that raises) loses nothing. */
cl_status cl_appendbuf_peek(cl_appendbuf *b, uint64_t *ts_out,
                            uint64_t *payload_out, size_t cap, size_t *n_out);
cl_status cl_appendbuf_consume(cl_appendbuf *b, size_t n);

/* Set (has_floor 1) or clear (0) the timestamp below which records are
 * refused, as a rewind does: only with nothing pending or ready
 * (CL_ERR_ARG otherwise, and nothing changes). */
cl_status cl_appendbuf_set_floor(cl_appendbuf *b, int has_floor, uint64_t floor);

typedef struct cl_appendbuf_stats {
    size_t window;        /* records per sealed window */
    size_t pending;       /* pushed but not yet sealed */
    size_t ready;         /* sealed, not yet drained */
    uint64_t count;       /* records ever accepted (next arrival number) */
    uint64_t windows;     /* windows sealed so far */
    int has_floor;        /* 1 once anything was sealed */
    uint64_t floor;       /* the last sealed timestamp */
} cl_appendbuf_stats;

void cl_appendbuf_get_stats(cl_appendbuf *b, cl_appendbuf_stats *out);

#endif

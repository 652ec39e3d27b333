#include "cl_appendbuf.h"

#include <stdlib.h>
#include <string.h>

#include "cl_mutex.h"

typedef struct entry {
    uint64_t ts;
    uint64_t seq;      /* arrival order: the tie-breaker that makes sorting stable */
    uint64_t payload;
} entry;

struct cl_appendbuf {
    cl_mutex lock;
    size_t window;
    entry *pending;    /* window entries */
    size_t n_pending;
    int pending_sorted; /* pending is already in (ts, seq) order */
    entry *scratch;    /* window entries, for the merge sort */
    uint64_t *ready_ts;
    uint64_t *ready_payload;
    size_t ready_head, ready_len, ready_cap;
    uint64_t count;
    uint64_t windows;
    int has_floor;
    uint64_t floor;
};

cl_status cl_appendbuf_new(size_t window, cl_appendbuf **out)
{
    cl_appendbuf *b;
    if (window == 0 || window > SIZE_MAX / (2 * sizeof(entry))) return CL_ERR_ARG;
    b = (cl_appendbuf *)calloc(1, sizeof(*b));
    if (!b) return CL_ERR_NOMEM;
    b->window = window;
    b->pending = (entry *)malloc(window * sizeof(entry));
    b->scratch = (entry *)malloc(window * sizeof(entry));
    b->ready_cap = 2 * window;
    b->ready_ts = (uint64_t *)malloc(b->ready_cap * sizeof(uint64_t));
    b->ready_payload = (uint64_t *)malloc(b->ready_cap * sizeof(uint64_t));
    b->pending_sorted = 1;
    if (!b->pending || !b->scratch || !b->ready_ts || !b->ready_payload ||
        cl_mutex_init(&b->lock) != 0) {
        free(b->pending); free(b->scratch); free(b->ready_ts); free(b->ready_payload);
        free(b);
        return CL_ERR_NOMEM;
    }
    *out = b;
    return CL_OK;
}

void cl_appendbuf_free(cl_appendbuf *b)
{
    if (!b) return;
    cl_mutex_destroy(&b->lock);
    free(b->pending); free(b->scratch); free(b->ready_ts); free(b->ready_payload);
    free(b);
}

static inline int entry_less(const entry *a, const entry *c)
{
    return a->ts < c->ts || (a->ts == c->ts && a->seq < c->seq);
}

/* Bottom-up merge sort: stable, O(n log n) worst case, no recursion and no
 * allocation (scratch is preallocated).  Windows are usually already in
 * order, which pending_sorted detects so the common case costs nothing. */
static entry *sort_entries(entry *a, entry *tmp, size_t n)
{
    size_t width, i;
    entry *src = a, *dst = tmp, *t;
    /* insertion-sort runs of 16 first: cheap on nearly sorted data */
    for (i = 0; i < n; i += 16) {
        size_t end = i + 16 < n ? i + 16 : n, j;
        for (j = i + 1; j < end; j++) {
            entry v = a[j];
            size_t k = j;
            while (k > i && entry_less(&v, &a[k - 1])) { a[k] = a[k - 1]; k--; }
            a[k] = v;
        }
    }
    for (width = 16; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            size_t lo = i, mid = i + width < n ? i + width : n;
            size_t hi = i + 2 * width < n ? i + 2 * width : n;
            size_t p = lo, q = mid, k = lo;
            if (mid >= hi || !entry_less(&src[mid], &src[mid - 1])) {
                memcpy(dst + lo, src + lo, (hi - lo) * sizeof(entry));
                continue;
            }
            while (p < mid && q < hi) dst[k++] = entry_less(&src[q], &src[p]) ? src[q++] : src[p++];
            while (p < mid) dst[k++] = src[p++];
            while (q < hi) dst[k++] = src[q++];
        }
        t = src; src = dst; dst = t;
    }
    return src;
}

static cl_status reserve_ready(cl_appendbuf *b, size_t extra)
{
    size_t need;
    if (b->ready_head > 0) {           /* compact what has been drained */
        memmove(b->ready_ts, b->ready_ts + b->ready_head, b->ready_len * sizeof(uint64_t));
        memmove(b->ready_payload, b->ready_payload + b->ready_head, b->ready_len * sizeof(uint64_t));
        b->ready_head = 0;
    }
    need = b->ready_len + extra;
    if (need > b->ready_cap) {
        size_t cap = b->ready_cap * 2 > need ? b->ready_cap * 2 : need;
        uint64_t *t = (uint64_t *)realloc(b->ready_ts, cap * sizeof(uint64_t));
        uint64_t *p;
        if (!t) return CL_ERR_NOMEM;
        b->ready_ts = t;
        p = (uint64_t *)realloc(b->ready_payload, cap * sizeof(uint64_t));
        if (!p) return CL_ERR_NOMEM;
        b->ready_payload = p;
        b->ready_cap = cap;
    }
    return CL_OK;
}

/* Called with the lock held. */
static cl_status seal_locked(cl_appendbuf *b)
{
    size_t n = b->n_pending, i;
    entry *sorted = b->pending;
    cl_status st;
    if (n == 0) return CL_OK;
    st = reserve_ready(b, n);
    if (st != CL_OK) return st;
    if (!b->pending_sorted) sorted = sort_entries(b->pending, b->scratch, n);
    for (i = 0; i < n; i++) {
        b->ready_ts[b->ready_len + i] = sorted[i].ts;
        b->ready_payload[b->ready_len + i] = sorted[i].payload;
    }
    b->ready_len += n;
    b->floor = sorted[n - 1].ts;
    b->has_floor = 1;
    b->n_pending = 0;
    b->pending_sorted = 1;
    b->windows++;
    return CL_OK;
}

/* Called with the lock held, after retry_seal_locked and the floor check.
 * The record is stored even if sealing the completed window runs out of
 * memory: that seal is retried before the next record is taken. */
static void push_locked(cl_appendbuf *b, uint64_t ts, uint64_t payload)
{
    entry *e = &b->pending[b->n_pending];
    if (b->n_pending > 0 && ts < b->pending[b->n_pending - 1].ts) b->pending_sorted = 0;
    e->ts = ts;
    e->seq = b->count++;
    e->payload = payload;
    if (++b->n_pending == b->window) (void)seal_locked(b);
}

/* A full pending window means an earlier seal ran out of memory; seal it
 * before anything else so the floor is right for the next record. */
static cl_status retry_seal_locked(cl_appendbuf *b)
{
    return b->n_pending == b->window ? seal_locked(b) : CL_OK;
}

cl_status cl_appendbuf_push(cl_appendbuf *b, uint64_t ts, const uint64_t *payload,
                            uint64_t *floor, int *sealed)
{
    cl_status st;
    uint64_t windows;
    cl_mutex_lock(&b->lock);
    windows = b->windows;
    if ((st = retry_seal_locked(b)) != CL_OK) {
        cl_mutex_unlock(&b->lock);
        return st;
    }
    if (b->has_floor && ts < b->floor) {
        if (floor) *floor = b->floor;
        cl_mutex_unlock(&b->lock);
        return CL_ERR_ORDER;
    }
    push_locked(b, ts, payload ? *payload : b->count);
    if (sealed) *sealed = b->windows != windows;
    cl_mutex_unlock(&b->lock);
    return CL_OK;
}

cl_status cl_appendbuf_push_many(cl_appendbuf *b, const uint64_t *ts, const uint64_t *payload,
                                 size_t n, size_t *n_done, uint64_t *floor)
{
    size_t i;
    cl_status st = CL_OK;
    cl_mutex_lock(&b->lock);
    i = 0;
    while (i < n) {
        /* Bulk path: the records up to the end of the window, when none is
         * below the floor, go in with one tight loop (no per-record seal or
         * floor test); a record below the floor falls to the loop below,
         * which stops at it exactly. */
        size_t room, j, end;
        int below = 0;
        if ((st = retry_seal_locked(b)) != CL_OK) break;
        room = b->window - b->n_pending;
        end = n - i < room ? n - i : room;
        if (b->has_floor) {
            uint64_t fl = b->floor;
            for (j = 0; j < end; j++) below |= ts[i + j] < fl;
        }
        if (below) break;
        {
            entry *e = b->pending + b->n_pending;
            uint64_t prev = b->n_pending ? e[-1].ts : 0, seq = b->count;
            int sorted = b->pending_sorted;
            for (j = 0; j < end; j++) {
                uint64_t t = ts[i + j];   /* read once: the caller's array is read without the GIL */
                sorted &= (b->n_pending + j == 0) | (t >= prev);
                prev = t;
                e[j].ts = t;
                e[j].seq = seq + j;
                e[j].payload = payload ? payload[i + j] : seq + j;
            }
            b->pending_sorted = sorted;
            b->count += end;
            b->n_pending += end;
            i += end;
            if (b->n_pending == b->window) (void)seal_locked(b);
        }
    }
    for (; i < n && st == CL_OK; i++) {
        uint64_t t = ts[i];
        if ((st = retry_seal_locked(b)) != CL_OK) break;
        if (b->has_floor && t < b->floor) {
            if (floor) *floor = b->floor;
            st = CL_ERR_ORDER;
            break;
        }
        push_locked(b, t, payload ? payload[i] : b->count);
    }
    *n_done = i;
    cl_mutex_unlock(&b->lock);
    return st;
}

cl_status cl_appendbuf_seal(cl_appendbuf *b)
{
    cl_status st;
    cl_mutex_lock(&b->lock);
    st = seal_locked(b);
    cl_mutex_unlock(&b->lock);
    return st;
}

cl_status cl_appendbuf_peek(cl_appendbuf *b, uint64_t *ts_out, uint64_t *payload_out,
                            size_t cap, size_t *n_out)
{
    size_t n;
    cl_mutex_lock(&b->lock);
    n = b->ready_len < cap ? b->ready_len : cap;
    if (n) {
        memcpy(ts_out, b->ready_ts + b->ready_head, n * sizeof(uint64_t));
        memcpy(payload_out, b->ready_payload + b->ready_head, n * sizeof(uint64_t));
    }
    *n_out = n;
    cl_mutex_unlock(&b->lock);
    return CL_OK;
}

cl_status cl_appendbuf_consume(cl_appendbuf *b, size_t n)
{
    cl_status st = CL_OK;
    cl_mutex_lock(&b->lock);
    if (n > b->ready_len) {
        st = CL_ERR_ARG;
    } else {
        b->ready_head += n;
        b->ready_len -= n;
        if (b->ready_len == 0) b->ready_head = 0;
    }
    cl_mutex_unlock(&b->lock);
    return st;
}

cl_status cl_appendbuf_set_floor(cl_appendbuf *b, int has_floor, uint64_t floor)
{
    cl_status st = CL_OK;
    cl_mutex_lock(&b->lock);
    if (b->n_pending || b->ready_len) {
        st = CL_ERR_ARG;
    } else {
        b->has_floor = has_floor ? 1 : 0;
        b->floor = has_floor ? floor : 0;
    }
    cl_mutex_unlock(&b->lock);
    return st;
}

void cl_appendbuf_get_stats(cl_appendbuf *b, cl_appendbuf_stats *out)
{
    cl_mutex_lock(&b->lock);
    out->window = b->window;
    out->pending = b->n_pending;
    out->ready = b->ready_len;
    out->count = b->count;
    out->windows = b->windows;
    out->has_floor = b->has_floor;
    out->floor = b->floor;
    cl_mutex_unlock(&b->lock);
}

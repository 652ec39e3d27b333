/* cl_mutex.h - the plain OS mutex the kernels and the compiled staging use.
 *
 * Why not CPython's PyThread lock: on Linux it is a semaphore whose
 * non-blocking acquire still reads the clock (it computes a deadline), which
 * cost a quarter of a per-record append.  An uncontended pthread mutex is a
 * pair of atomic instructions.
 *
 * Ownership: the caller owns the cl_mutex storage; init before use, destroy
 * once after the last unlock.
 */
#ifndef CL_MUTEX_H
#define CL_MUTEX_H

#if defined(_WIN32)
#include <windows.h>
typedef SRWLOCK cl_mutex;
static inline int cl_mutex_init(cl_mutex *m) { InitializeSRWLock(m); return 0; }
static inline void cl_mutex_destroy(cl_mutex *m) { (void)m; }
static inline void cl_mutex_lock(cl_mutex *m) { AcquireSRWLockExclusive(m); }
static inline int cl_mutex_trylock(cl_mutex *m) { return TryAcquireSRWLockExclusive(m) ? 1 : 0; }
static inline void cl_mutex_unlock(cl_mutex *m) { ReleaseSRWLockExclusive(m); }
#else
#include <pthread.h>
typedef pthread_mutex_t cl_mutex;
static inline int cl_mutex_init(cl_mutex *m) { return pthread_mutex_init(m, NULL); }
static inline void cl_mutex_destroy(cl_mutex *m) { pthread_mutex_destroy(m); }
static inline void cl_mutex_lock(cl_mutex *m) { pthread_mutex_lock(m); }
/* 1 when the lock was taken */
static inline int cl_mutex_trylock(cl_mutex *m) { return pthread_mutex_trylock(m) == 0; }
static inline void cl_mutex_unlock(cl_mutex *m) { pthread_mutex_unlock(m); }
#endif

#endif

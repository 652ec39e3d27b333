/* cl_sqlbulk.h - many rows into SQLite through one prepared statement, read
 * from C arrays.
 *
 * Why: a world run writes a million rows in a few seconds.  Through apsw's
 * executemany every value of every row is first a Python object in a tuple
 * and is then converted back to C, which costs more than SQLite's own insert.
 * Here the rows are columns of C values and the loop is C, with the GIL free.
 *
 * How SQLite is reached: apsw carries its own SQLite and exports none of its
 * symbols, so there is no library to link against and no header is needed
 * at build time.  SQLite hands its function table (sqlite3_api_routines) to a
 * loadable extension's entry point; cl_sqlbulk_entry is that entry point
 * (exported from the chronoledger._sqlbulk extension, which apsw loads once
 * with Connection.load_extension).  The table's order is SQLite's stable ABI:
 * members are only ever appended, and the indexes used here are those of
 * sqlite3ext.h since 3.7.4; the entry point refuses SQLite older than 3.45.
 *
 * Ownership: every pointer in a cl_sqlcol is borrowed and must stay valid
 * for the whole call; texts are bound SQLITE_STATIC (no copies).  The
 * database handle is the caller's (apsw's), used from one thread at a time.
 */
#ifndef CL_SQLBULK_H
#define CL_SQLBULK_H

#include <stddef.h>
#include <stdint.h>

#include "cl_status.h"

typedef enum cl_sqlcol_kind {
    CL_SQLCOL_NULL = 0,        /* every row NULL */
    CL_SQLCOL_I64 = 1,         /* i64[row] */
    CL_SQLCOL_F64 = 2,         /* f64[row] */
    CL_SQLCOL_MIXED = 3,       /* each row's own type: tag[row] is a cl_sqlval_tag */
    CL_SQLCOL_CONST_I64 = 4,   /* ci in every row */
    CL_SQLCOL_CONST_F64 = 5,   /* cf in every row */
    CL_SQLCOL_CONST_TEXT = 6,  /* ct (ct_len bytes of UTF-8) in every row */
    CL_SQLCOL_CONST_BLOB = 7   /* ct (ct_len bytes) as a blob in every row */
} cl_sqlcol_kind;

/* A CL_SQLCOL_MIXED row: what it binds, and from which array. */
typedef enum cl_sqlval_tag {
    CL_SQLVAL_NULL = 0,
    CL_SQLVAL_I64 = 1,         /* i64[row] */
    CL_SQLVAL_F64 = 2,         /* f64[row] */
    CL_SQLVAL_TEXT = 3,        /* text[row], text_len[row] bytes of UTF-8 */
    CL_SQLVAL_BLOB = 4         /* text[row], text_len[row] bytes */
} cl_sqlval_tag;

typedef struct cl_sqlcol {
    int kind;                       /* a cl_sqlcol_kind */
    const uint8_t *tag;             /* CL_SQLCOL_MIXED: nrows cl_sqlval_tag values */
    const int64_t *i64;
    const double *f64;
    const char *const *text;
    const int64_t *text_len;
    int64_t ci;
    double cf;
    const char *ct;
    int64_t ct_len;
} cl_sqlcol;

/* Exported whatever the build's default visibility: SQLite finds it by name. */
#if defined(_WIN32)
#define CL_SQLBULK_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define CL_SQLBULK_EXPORT __attribute__((visibility("default")))
#else
#define CL_SQLBULK_EXPORT
#endif

/* The extension entry point SQLite calls with its function table
 * (signature of sqlite3_extension_init; the pointers are opaque here). */
CL_SQLBULK_EXPORT int cl_sqlbulk_entry(void *db, char **err, const void *api);

/* 1 once an entry call has given a usable table (SQLite >= 3.45), else 0. */
int cl_sqlbulk_bound(void);

/* The bound SQLite's version number (e.g. 3054001), 0 if unbound. */
int cl_sqlbulk_version(void);

/* Prepare sql (one statement with ncols parameters), run it once per row
 * with row r's values bound, and finalize it.  *changes adds up the rows
 * each step changed (an INSERT OR IGNORE that ignored a row adds 0).
 *
 * Returns CL_OK; CL_ERR_UNSUPPORTED if unbound; CL_ERR_ARG for a bad column
 * kind, a parameter count that is not ncols, more than one statement, or a
 * statement that only reads; CL_ERR_SQLITE when SQLite
 * failed: *sqlite_code is its extended result code, *failed_row the row
 * (-1 while preparing) and errmsg (errmsg_len bytes, NUL-terminated) its
 * message.  Rows before the failed one stay inserted: the caller's
 * transaction decides what is kept.  With nrows == 0 nothing is prepared. */
cl_status cl_sqlbulk_insert(void *db, const char *sql, const cl_sqlcol *cols, int ncols, int64_t nrows,
                            int64_t *changes, int64_t *failed_row, int *sqlite_code,
                            char *errmsg, size_t errmsg_len);

#endif

/* cl_sqlbulk.c - see cl_sqlbulk.h. */
#include "cl_sqlbulk.h"

#include <string.h>

/* Indexes into sqlite3_api_routines (sqlite3ext.h), all present since 3.7.4. */
enum {
    API_BIND_BLOB = 2,
    API_BIND_DOUBLE = 3,
    API_BIND_INT64 = 5,
    API_BIND_NULL = 6,
    API_BIND_PARAMETER_COUNT = 7,
    API_BIND_TEXT = 10,
    API_CHANGES = 15,
    API_ERRMSG = 53,
    API_FINALIZE = 57,
    API_LIBVERSION_NUMBER = 67,
    API_RESET = 77,
    API_STEP = 94,
    API_STMT_READONLY = 185,
    API_PREPARE_V2 = 116,
    API_EXTENDED_ERRCODE = 166
};

enum { SQL_OK = 0, SQL_MISUSE = 21, SQL_TOOBIG = 18, SQL_RANGE = 25, SQL_ROW = 100, SQL_DONE = 101 };
#define MIN_VERSION 3045000

typedef void (*api_fn)(void);
typedef int (*fn_bind_double)(void *, int, double);
typedef int (*fn_bind_int64)(void *, int, int64_t);
typedef int (*fn_bind_null)(void *, int);
typedef int (*fn_stmt)(void *);
typedef int (*fn_bind_text)(void *, int, const char *, int, void (*)(void *));
typedef int (*fn_bind_blob)(void *, int, const void *, int, void (*)(void *));
typedef int (*fn_db)(void *);
typedef const char *(*fn_errmsg)(void *);
typedef int (*fn_void)(void);
typedef int (*fn_prepare)(void *, const char *, int, void **, const char **);

/* Written once by the entry point (under the GIL, before any insert). */
static const api_fn *g_api = NULL;
static int g_version = 0;

CL_SQLBULK_EXPORT int cl_sqlbulk_entry(void *db, char **err, const void *api)
{
    (void)db;
    (void)err;
    const api_fn *table = (const api_fn *)api;
    int version = ((fn_void)table[API_LIBVERSION_NUMBER])();
    if (version < MIN_VERSION)
        return 1;                           /* SQLITE_ERROR: the load fails, nothing is bound */
    g_version = version;
    g_api = table;
    return SQL_OK;
}

int cl_sqlbulk_bound(void) { return g_api != NULL; }

int cl_sqlbulk_version(void) { return g_version; }

static void set_error(void *db, int code, char *errmsg, size_t errmsg_len, int *sqlite_code, const char *fallback)
{
    *sqlite_code = code;
    if (errmsg_len == 0)
        return;
    const char *msg = fallback;
    if (msg == NULL && db != NULL)
        msg = ((fn_errmsg)g_api[API_ERRMSG])(db);
    if (msg == NULL)
        msg = "unknown error";
    strncpy(errmsg, msg, errmsg_len - 1);
    errmsg[errmsg_len - 1] = '\0';
}

static int is_blank(const char *s)
{
    for (; s != NULL && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != ';')
            return 0;
    return 1;
}

cl_status cl_sqlbulk_insert(void *db, const char *sql, const cl_sqlcol *cols, int ncols, int64_t nrows,
                            int64_t *changes, int64_t *failed_row, int *sqlite_code,
                            char *errmsg, size_t errmsg_len)
{
    *failed_row = -1;
    *sqlite_code = SQL_OK;
    if (g_api == NULL)
        return CL_ERR_UNSUPPORTED;
    if (db == NULL || sql == NULL || ncols < 0 || nrows < 0 || (ncols > 0 && cols == NULL))
        return CL_ERR_ARG;
    for (int c = 0; c < ncols; c++) {
        const cl_sqlcol *col = &cols[c];
        int k = col->kind;
        if (k < CL_SQLCOL_NULL || k > CL_SQLCOL_CONST_BLOB)
            return CL_ERR_ARG;
        if (nrows > 0 && ((k == CL_SQLCOL_I64 && col->i64 == NULL) || (k == CL_SQLCOL_F64 && col->f64 == NULL) ||
                          (k == CL_SQLCOL_MIXED && (col->tag == NULL || col->i64 == NULL || col->f64 == NULL ||
                                                    col->text == NULL || col->text_len == NULL))))
            return CL_ERR_ARG;
        if ((k == CL_SQLCOL_CONST_TEXT || k == CL_SQLCOL_CONST_BLOB) &&
            (col->ct == NULL || col->ct_len < 0 || col->ct_len > 0x7FFFFFFF))
            return CL_ERR_ARG;
    }

    if (nrows == 0)
        return CL_OK;                       /* as executemany over no rows: the statement is not even prepared */

    fn_bind_double bind_double = (fn_bind_double)g_api[API_BIND_DOUBLE];
    fn_bind_int64 bind_int64 = (fn_bind_int64)g_api[API_BIND_INT64];
    fn_bind_null bind_null = (fn_bind_null)g_api[API_BIND_NULL];
    fn_bind_text bind_text = (fn_bind_text)g_api[API_BIND_TEXT];
    fn_bind_blob bind_blob = (fn_bind_blob)g_api[API_BIND_BLOB];
    fn_stmt step = (fn_stmt)g_api[API_STEP];
    fn_stmt reset = (fn_stmt)g_api[API_RESET];
    fn_stmt finalize = (fn_stmt)g_api[API_FINALIZE];
    fn_db db_changes = (fn_db)g_api[API_CHANGES];
    fn_db extended_errcode = (fn_db)g_api[API_EXTENDED_ERRCODE];

    void *stmt = NULL;
    const char *tail = NULL;
    int rc = ((fn_prepare)g_api[API_PREPARE_V2])(db, sql, -1, &stmt, &tail);
    if (rc != SQL_OK) {
        set_error(db, extended_errcode(db), errmsg, errmsg_len, sqlite_code, NULL);
        return CL_ERR_SQLITE;
    }
    if (stmt == NULL || !is_blank(tail) || ((fn_stmt)g_api[API_BIND_PARAMETER_COUNT])(stmt) != ncols ||
        ((fn_stmt)g_api[API_STMT_READONLY])(stmt)) {
        if (stmt != NULL)
            finalize(stmt);
        return CL_ERR_ARG;
    }

    /* Constants are bound once: a reset keeps bindings, and only the
     * per-row columns are bound again. */
    for (int c = 0; c < ncols; c++) {
        const cl_sqlcol *col = &cols[c];
        switch (col->kind) {
        case CL_SQLCOL_NULL: rc = bind_null(stmt, c + 1); break;
        case CL_SQLCOL_CONST_I64: rc = bind_int64(stmt, c + 1, col->ci); break;
        case CL_SQLCOL_CONST_F64: rc = bind_double(stmt, c + 1, col->cf); break;
        case CL_SQLCOL_CONST_TEXT: rc = bind_text(stmt, c + 1, col->ct, (int)col->ct_len, NULL); break;
        case CL_SQLCOL_CONST_BLOB: rc = bind_blob(stmt, c + 1, col->ct, (int)col->ct_len, NULL); break;
        default: rc = SQL_OK;
        }
        if (rc != SQL_OK) {
            set_error(db, rc, errmsg, errmsg_len, sqlite_code, NULL);
            finalize(stmt);
            return CL_ERR_SQLITE;
        }
    }

    int64_t total = 0;
    for (int64_t r = 0; r < nrows; r++) {
        for (int c = 0; c < ncols && rc == SQL_OK; c++) {
            const cl_sqlcol *col = &cols[c];
            switch (col->kind) {
            case CL_SQLCOL_I64:
                rc = bind_int64(stmt, c + 1, col->i64[r]);
                break;
            case CL_SQLCOL_F64:
                rc = bind_double(stmt, c + 1, col->f64[r]);
                break;
            case CL_SQLCOL_MIXED:
                switch (col->tag[r]) {
                case CL_SQLVAL_NULL: rc = bind_null(stmt, c + 1); break;
                case CL_SQLVAL_I64: rc = bind_int64(stmt, c + 1, col->i64[r]); break;
                case CL_SQLVAL_F64: rc = bind_double(stmt, c + 1, col->f64[r]); break;
                case CL_SQLVAL_TEXT:
                case CL_SQLVAL_BLOB:
                    if (col->text_len[r] < 0 || col->text_len[r] > 0x7FFFFFFF)
                        rc = SQL_TOOBIG;
                    else if (col->tag[r] == CL_SQLVAL_TEXT)     /* NULL destructor: SQLITE_STATIC, no copy */
                        rc = bind_text(stmt, c + 1, col->text[r], (int)col->text_len[r], NULL);
                    else
                        rc = bind_blob(stmt, c + 1, col->text[r], (int)col->text_len[r], NULL);
                    break;
                default: rc = SQL_MISUSE;
                }
                break;
            default:
                break;
            }
        }
        if (rc == SQL_OK) {
            do {
                rc = step(stmt);
            } while (rc == SQL_ROW);
            if (rc == SQL_DONE) {
                total += db_changes(db);
                rc = reset(stmt);
            }
        }
        if (rc != SQL_OK) {
            *failed_row = r;
            int code = extended_errcode(db);
            set_error(db, code != SQL_OK ? code : rc, errmsg, errmsg_len, sqlite_code,
                      rc == SQL_TOOBIG && code == SQL_OK ? "string or blob too big" : NULL);
            reset(stmt);
            finalize(stmt);
            *changes += total;
            return CL_ERR_SQLITE;
        }
    }
    finalize(stmt);
    *changes += total;
    return CL_OK;
}

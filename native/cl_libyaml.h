/* cl_libyaml.h - libyaml's event parser, bound at run time from the copy
 * that PyYAML's C extension (yaml/_yaml.*.so) already carries.
 *
 * Why: reading a Chronos user folder is tens of thousands of small YAML files,
 * and PyYAML's C composer spends most of its time not in libyaml but in the
 * Python objects it makes for every event (a node, two marks, a resolver
 * call).  Reading libyaml's events directly and building the values in
 * Cython (src/_yamlread.pyx) is several times faster, with the same parser.
 * We do not vendor or link our own libyaml: the wheel would then need
 * libyaml's headers at build time, and two copies could disagree.  Instead
 * the parser functions are looked up in PyYAML's extension, which exports
 * them, and only the handful of public types below are declared here.
 *
 * These declarations are libyaml's public ABI for versions 0.1.x and 0.2.x
 * (yaml.h: yaml_mark_t, yaml_event_t and the event type numbers).
 * cl_libyaml_bind() refuses any other version, and then callers keep to
 * PyYAML's own loader.
 *
 * Ownership: the parser state is an opaque buffer owned by the caller
 * (CL_YAML_PARSER_SIZE bytes, zeroed by cl_yaml_parser_init); an event is
 * filled by cl_yaml_parse and must be released with cl_yaml_event_delete.
 * The input bytes stay owned by the caller and must outlive the parser.
 * Binding is done once; after it, every function is safe from any thread
 * on distinct parsers.
 */
#ifndef CL_LIBYAML_H
#define CL_LIBYAML_H

#include <stddef.h>

#include "cl_status.h"

typedef struct cl_yaml_mark {
    size_t index, line, column;
} cl_yaml_mark;

typedef enum cl_yaml_event_type {
    CL_YAML_NO_EVENT = 0,
    CL_YAML_STREAM_START = 1,
    CL_YAML_STREAM_END = 2,
    CL_YAML_DOCUMENT_START = 3,
    CL_YAML_DOCUMENT_END = 4,
    CL_YAML_ALIAS = 5,
    CL_YAML_SCALAR = 6,
    CL_YAML_SEQUENCE_START = 7,
    CL_YAML_SEQUENCE_END = 8,
    CL_YAML_MAPPING_START = 9,
    CL_YAML_MAPPING_END = 10
} cl_yaml_event_type;

typedef struct cl_yaml_event {
    cl_yaml_event_type type;
    union {
        struct { int encoding; } stream_start;
        struct {
            void *version_directive;
            struct { void *start, *end; } tag_directives;
            int implicit;
        } document_start;
        struct { int implicit; } document_end;
        struct { unsigned char *anchor; } alias;
        struct {
            unsigned char *anchor, *tag, *value;
            size_t length;
            int plain_implicit, quoted_implicit;
            int style;
        } scalar;
        struct { unsigned char *anchor, *tag; int implicit; int style; } sequence_start;
        struct { unsigned char *anchor, *tag; int implicit; int style; } mapping_start;
    } data;
    cl_yaml_mark start_mark, end_mark;
} cl_yaml_event;

/* libyaml 0.2.5's yaml_parser_t is 480 bytes on 64-bit targets; the buffer
 * is kept well above any 0.x layout. */
#define CL_YAML_PARSER_SIZE 4096

typedef struct cl_yaml_parser {
    union { char bytes[CL_YAML_PARSER_SIZE]; void *align_ptr; double align_double; } state;
} cl_yaml_parser;

/* Binds the functions from the shared object at `path` (already loaded:
 * nothing is loaded anew).  CL_OK, or CL_ERR_UNSUPPORTED when the object
 * cannot be found, lacks a function, or reports a libyaml version other
 * than 0.1.x / 0.2.x.  `version` (may be NULL) receives "major.minor.patch". */
cl_status cl_libyaml_bind(const char *path, char version[32]);

/* Whether cl_libyaml_bind has succeeded. */
int cl_libyaml_bound(void);

/* Parser over `length` bytes at `input` (UTF-8, or UTF-16 after a BOM).
 * CL_ERR_NOMEM or CL_ERR_UNSUPPORTED (not bound) on failure. */
cl_status cl_yaml_parser_init(cl_yaml_parser *parser, const unsigned char *input, size_t length);

/* The next event: 1 on success, 0 on a parse error (the document is not
 * well-formed YAML; the caller asks PyYAML's loader for the message). */
int cl_yaml_parse(cl_yaml_parser *parser, cl_yaml_event *event);

void cl_yaml_event_delete(cl_yaml_event *event);
void cl_yaml_parser_delete(cl_yaml_parser *parser);

#endif

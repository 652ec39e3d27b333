/* cl_libyaml.c - see cl_libyaml.h. */
#include "cl_libyaml.h"

#include <stdio.h>
#include <string.h>

#if defined(_WIN32)

cl_status cl_libyaml_bind(const char *path, char version[32])
{
    (void)path;
    if (version) version[0] = '\0';
    return CL_ERR_UNSUPPORTED;            /* PyYAML's own loader is used there */
}

int cl_libyaml_bound(void) { return 0; }

cl_status cl_yaml_parser_init(cl_yaml_parser *parser, const unsigned char *input, size_t length)
{
    (void)input; (void)length;
    memset(parser, 0, sizeof *parser);
    return CL_ERR_UNSUPPORTED;
}

int cl_yaml_parse(cl_yaml_parser *parser, cl_yaml_event *event) { (void)parser; (void)event; return 0; }
void cl_yaml_event_delete(cl_yaml_event *event) { (void)event; }
void cl_yaml_parser_delete(cl_yaml_parser *parser) { (void)parser; }

#else

#include <dlfcn.h>

typedef int (*parser_initialize_fn)(void *);
typedef void (*parser_set_input_string_fn)(void *, const unsigned char *, size_t);
typedef int (*parser_parse_fn)(void *, cl_yaml_event *);
typedef void (*parser_delete_fn)(void *);
typedef void (*event_delete_fn)(cl_yaml_event *);
typedef void (*get_version_fn)(int *, int *, int *);

static struct {
    int bound;
    char version[32];
    parser_initialize_fn initialize;
    parser_set_input_string_fn set_input_string;
    parser_parse_fn parse;
    parser_delete_fn parser_delete;
    event_delete_fn event_delete;
} yaml_api;

cl_status cl_libyaml_bind(const char *path, char version[32])
{
    int major = -1, minor = -1, patch = -1;
    void *handle;
    get_version_fn get_version;

    if (version) version[0] = '\0';
    if (yaml_api.bound) {
        if (version) memcpy(version, yaml_api.version, sizeof yaml_api.version);
        return CL_OK;
    }
    /* RTLD_NOLOAD: only an object the interpreter has already loaded (by
     * importing yaml._yaml); the handle then reaches its dependencies too,
     * for a PyYAML linked against a shared libyaml. */
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (handle == NULL) return CL_ERR_UNSUPPORTED;
    get_version = (get_version_fn)dlsym(handle, "yaml_get_version");
    yaml_api.initialize = (parser_initialize_fn)dlsym(handle, "yaml_parser_initialize");
    yaml_api.set_input_string = (parser_set_input_string_fn)dlsym(handle, "yaml_parser_set_input_string");
    yaml_api.parse = (parser_parse_fn)dlsym(handle, "yaml_parser_parse");
    yaml_api.parser_delete = (parser_delete_fn)dlsym(handle, "yaml_parser_delete");
    yaml_api.event_delete = (event_delete_fn)dlsym(handle, "yaml_event_delete");
    if (!get_version || !yaml_api.initialize || !yaml_api.set_input_string || !yaml_api.parse
            || !yaml_api.parser_delete || !yaml_api.event_delete)
        return CL_ERR_UNSUPPORTED;
    get_version(&major, &minor, &patch);
    snprintf(yaml_api.version, sizeof yaml_api.version, "%d.%d.%d", major, minor, patch);
    if (version) memcpy(version, yaml_api.version, sizeof yaml_api.version);
    if (major != 0 || (minor != 1 && minor != 2))
        return CL_ERR_UNSUPPORTED;        /* a layout we have not checked */
    yaml_api.bound = 1;                   /* the handle is kept: the object stays loaded */
    return CL_OK;
}

int cl_libyaml_bound(void)
{
    return yaml_api.bound;
}

cl_status cl_yaml_parser_init(cl_yaml_parser *parser, const unsigned char *input, size_t length)
{
    memset(parser, 0, sizeof *parser);
    if (!yaml_api.bound) return CL_ERR_UNSUPPORTED;
    if (!yaml_api.initialize(parser)) return CL_ERR_NOMEM;
    yaml_api.set_input_string(parser, input, length);
    return CL_OK;
}

int cl_yaml_parse(cl_yaml_parser *parser, cl_yaml_event *event)
{
    return yaml_api.parse(parser, event);
}

void cl_yaml_event_delete(cl_yaml_event *event)
{
    yaml_api.event_delete(event);
}

void cl_yaml_parser_delete(cl_yaml_parser *parser)
{
    yaml_api.parser_delete(parser);
}

#endif

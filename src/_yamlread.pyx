# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
"""Plain YAML documents built straight from libyaml's events.

PyYAML's C loader makes a node, two marks and a resolver call for every
scalar before any value exists; for a user folder of tens of thousands of
small files that bookkeeping, not parsing, is most of the time.  ``read``
walks the same parser's events (libyaml, bound from PyYAML's own extension:
native/cl_libyaml.h) and builds dicts, lists and strings directly, asking
the caller only for what PyYAML's safe loader decides itself: the implicit
tag of a plain scalar and the value of a non-string scalar.

It handles the documents a user folder holds: one document of mappings,
sequences and scalars with the core tags.  Anything else (an anchor or
alias, a merge key, an explicit collection tag, a key that is not a scalar,
a second document, a parse error) raises :class:`NotPlain`, and the caller
reads the document with PyYAML's loader, which gives the exact value or the
exact error.  Nothing here decides what a value means.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_Append
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport strcmp, strlen

from cnative cimport *

import os

from chronoledger import errors as _errors

STR = "tag:yaml.org,2002:str"
_CACHE_LIMIT = 200_000


class NotPlain(Exception):
    """The document needs PyYAML's loader (see the module docstring)."""


class TooDeep(Exception):
    """Collections nest deeper than the ``max_depth`` given to :func:`read`;
    ``args`` are the depth reached and the 1-based line of the collection
    that reached it."""

    @property
    def line(self):
        return self.args[1]


def bind(str path):
    """Look libyaml up in the loaded extension at ``path`` (PyYAML's
    ``yaml._yaml``).  Returns libyaml's version, or None when it cannot be
    used (then every call of :func:`read` raises NotPlain)."""
    cdef char version[32]
    cdef bytes p = os.fsencode(path)
    if cl_libyaml_bind(p, version) != CL_OK:
        return None
    return version.decode()


cdef inline bint _is_plain_tag(const unsigned char *tag):
    # no tag, or the non-specific "!" (which makes a scalar a string)
    return tag == NULL or (tag[0] == b'!' and tag[1] == 0)


cdef class _Doc:
    cdef cl_yaml_parser parser
    cdef cl_yaml_event ev
    cdef bint live                 # ev holds an event still to be released
    cdef bint started              # parser initialised
    cdef bytes raw                 # the input: libyaml reads it in place
    cdef dict tags, keys
    cdef object resolve, scalar
    cdef int case_depth, max_depth

    def __dealloc__(self):
        if self.live:
            cl_yaml_event_delete(&self.ev)
        if self.started:
            cl_yaml_parser_delete(&self.parser)

    cdef int next(self) except -1:
        if self.live:
            cl_yaml_event_delete(&self.ev)
            self.live = 0
        if not cl_yaml_parse(&self.parser, &self.ev):
            raise NotPlain("not well-formed")
        self.live = 1
        return self.ev.type

    cdef object tag_of(self, str value):
        """The tag PyYAML's safe loader gives the current scalar event."""
        cdef const unsigned char *tag = self.ev.data.scalar.tag
        cdef PyObject *known
        if _is_plain_tag(tag):
            if not self.ev.data.scalar.plain_implicit:
                return STR                            # quoted (a "!" tag keeps plain_implicit: resolved)
            known = PyDict_GetItem(self.tags, value)
            if known != NULL:
                return <object>known
            return self.resolve(value)
        return PyUnicode_DecodeUTF8(<const char *>tag, strlen(<const char *>tag), NULL)

    cdef object node(self, int depth):
        cdef int kind = self.ev.type
        cdef str text
        if kind == CL_YAML_SCALAR:
            if self.ev.data.scalar.anchor != NULL:
                raise NotPlain("anchor")
            text = PyUnicode_DecodeUTF8(<const char *>self.ev.data.scalar.value,
                                        self.ev.data.scalar.length, NULL)
            tag = self.tag_of(text)
            if tag == STR:
                return text
            return self.scalar(tag, text)
        if kind == CL_YAML_SEQUENCE_START:
            if self.ev.data.sequence_start.anchor != NULL:
                raise NotPlain("anchor")
            if not _is_plain_tag(self.ev.data.sequence_start.tag) and \
                    strcmp(<const char *>self.ev.data.sequence_start.tag, b"tag:yaml.org,2002:seq") != 0:
                raise NotPlain("tagged sequence")
            if depth + 1 > self.max_depth:
                raise TooDeep(depth + 1, self.ev.start_mark.line + 1)
            items = []
            while self.next() != CL_YAML_SEQUENCE_END:
                PyList_Append(items, self.node(depth + 1))
            return items
        if kind == CL_YAML_MAPPING_START:
            if self.ev.data.mapping_start.anchor != NULL:
                raise NotPlain("anchor")
            if not _is_plain_tag(self.ev.data.mapping_start.tag) and \
                    strcmp(<const char *>self.ev.data.mapping_start.tag, b"tag:yaml.org,2002:map") != 0:
                raise NotPlain("tagged mapping")
            if depth + 1 > self.max_depth:
                raise TooDeep(depth + 1, self.ev.start_mark.line + 1)
            mapping = {}
            while self.next() != CL_YAML_MAPPING_END:
                key = self.key(depth)
                self.next()
                PyDict_SetItem(mapping, key, self.node(depth + 1))
            return mapping
        raise NotPlain("alias")

    cdef object key(self, int depth):
        """The current event as a key of a mapping at ``depth``: strings
        stripped and lower-cased except at the case-keeping depth."""
        cdef PyObject *known
        cdef str text
        if self.ev.type != CL_YAML_SCALAR or self.ev.data.scalar.anchor != NULL:
            raise NotPlain("complex key")
        text = PyUnicode_DecodeUTF8(<const char *>self.ev.data.scalar.value, self.ev.data.scalar.length, NULL)
        tag = self.tag_of(text)
        if tag != STR:
            return self.scalar(tag, text, True)     # int, date...; a merge key (<<) raises NotPlain there
        if depth == self.case_depth:
            return text
        known = PyDict_GetItem(self.keys, text)
        if known != NULL:
            return <object>known
        lowered = text.strip().lower()
        if len(self.keys) < _CACHE_LIMIT:
            self.keys[text] = lowered
        return lowered


#: read() recurses once per level of nesting, on the C stack.
MAX_DEPTH_LIMIT = 5000


def read(bytes raw not None, int case_depth, int max_depth, dict tags not None, resolve, scalar,
         dict keys not None):
    """The value of the single YAML document in ``raw``.

    ``tags`` maps a plain scalar's text to its implicit tag (a cache the
    caller fills); ``resolve(text)`` gives the tag when it is not there.
    ``scalar(tag, text, is_key=False)`` builds a non-string scalar (and
    raises NotPlain for a tag it leaves to PyYAML).  Mapping keys are
    stripped and lower-cased, through the ``keys`` cache, except in mappings
    at ``case_depth`` (the document itself is depth 0; -1: none).  Raises
    NotPlain (see the module docstring) or TooDeep past ``max_depth``
    nested collections."""
    cdef _Doc doc = _Doc.__new__(_Doc)
    cdef int kind
    cdef cl_status st
    if not 0 <= max_depth <= MAX_DEPTH_LIMIT:
        raise ValueError(f"max_depth must be 0..{MAX_DEPTH_LIMIT}, got {max_depth}")
    if not cl_libyaml_bound():
        raise NotPlain("libyaml is not bound")
    doc.raw = raw
    doc.tags = tags
    doc.keys = keys
    doc.resolve = resolve
    doc.scalar = scalar
    doc.case_depth = case_depth
    doc.max_depth = max_depth
    st = cl_yaml_parser_init(&doc.parser, <const unsigned char *>PyBytes_AS_STRING(raw), <size_t>PyBytes_GET_SIZE(raw))
    if st == CL_ERR_UNSUPPORTED:
        raise NotPlain("no parser")                 # not bound: PyYAML's loader reads it (control flow)
    if st != CL_OK:
        raise _errors.status_error(<int>st, "reading YAML with libyaml")      # out of memory: the table's
    doc.started = 1
    doc.next()                                      # stream start
    if doc.next() == CL_YAML_STREAM_END:
        return None                                 # no document (comments only)
    doc.next()
    value = doc.node(0)
    doc.next()                                      # document end
    if doc.next() != CL_YAML_STREAM_END:
        raise NotPlain("more than one document")
    return value

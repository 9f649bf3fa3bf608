/* The kernel sources embedded at build time (see tools/embed_cl.c, cl/meson.build). */
#ifndef DAECL_CL_SOURCES_H
#define DAECL_CL_SOURCES_H

struct dc_embedded_cl {
    const char *name; /* file name in cl/, e.g. "conv2d.cl" */
    const char *text;
};

/* Terminated by {0, 0}. */
extern const struct dc_embedded_cl dc_embedded_cl_sources[];

#endif

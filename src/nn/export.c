/* Model export (see daecl/export.h): the graph builder the layer kinds' hooks call, a minimal
 * protobuf writer for the ONNX ModelProto, and the .npz of the parameters.
 *
 * Protobuf wire format: each field is a varint key (field number << 3 | wire type) then
 * a varint (type 0), 4 little-endian bytes (type 5: float) or a varint length and that many
 * bytes (type 2: strings, bytes and nested messages). Repeated fields repeat the key. */
#include "daecl/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/bytes.h"
#include "daecl/npz.h"

/* ---- protobuf writer ---------------------------------------------------------------------- */

typedef dc_bytes pb;
#define pb_raw dc_bytes_put

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

static void pb_varint(pb *b, uint64_t v)
{
    unsigned char out[10];
    int n = 0;
    do {
        out[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) out[n] |= 0x80;
        n++;
    } while (v);
    pb_raw(b, out, (size_t)n);
}

static void pb_key(pb *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_int(pb *b, int field, int64_t v) /* int32/int64/enum: negatives as 10 bytes */
{
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

static void pb_bytes(pb *b, int field, const void *data, size_t n)
{
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, n);
    pb_raw(b, data, n);
}

static void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

static void pb_float(pb *b, int field, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    unsigned char le[4] = {(unsigned char)bits, (unsigned char)(bits >> 8), (unsigned char)(bits >> 16),
                           (unsigned char)(bits >> 24)};
    pb_key(b, field, WIRE_FIXED32);
    pb_raw(b, le, 4);
}

/* Append `sub` as a nested message and empty it for reuse. */
static void pb_msg(pb *b, int field, pb *sub)
{
    b->oom |= sub->oom;
    pb_bytes(b, field, sub->p, sub->len);
    sub->len = 0;
}

/* onnx.proto field numbers and enums used here. */
enum {
    MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_DOC = 6,
    MODEL_GRAPH = 7, MODEL_OPSET_IMPORT = 8,
    OPSET_DOMAIN = 1, OPSET_VERSION = 2,
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
    NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5,
    ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_INTS = 8, ATTR_TYPE = 20,
    ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_INTS_TYPE = 7,
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9,
    TENSOR_FLOAT = 1, TENSOR_INT64 = 7,
    VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TYPE_ELEM = 1, TYPE_SHAPE = 2,
    SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2,
};

/* ---- the graph under construction --------------------------------------------------------- */

typedef struct param {
    char name[64];
    dc_npy_array array;
} param;

struct dc_export {
    pb nodes, inits, node, scratch;
    int node_open;
    param *params;
    int nparams, cap;
    int oom;
};

static void close_node(dc_export *g)
{
    if (!g->node_open) return;
    pb_msg(&g->nodes, GRAPH_NODE, &g->node);
    g->node_open = 0;
}

dc_status dc_export_node(dc_export *g, const char *op_type, const char *const *inputs, int ninputs,
                         const char *output)
{
    close_node(g);
    for (int i = 0; i < ninputs; i++) pb_str(&g->node, NODE_INPUT, inputs[i]);
    pb_str(&g->node, NODE_OUTPUT, output);
    pb_str(&g->node, NODE_NAME, output);
    pb_str(&g->node, NODE_OP_TYPE, op_type);
    g->node_open = 1;
    return g->node.oom ? dc_fail(DC_ERR_NOMEM, "out of memory building the ONNX graph") : DC_OK;
}

static void attr_end(dc_export *g, const char *name, int type)
{
    pb_str(&g->scratch, ATTR_NAME, name);
    pb_int(&g->scratch, ATTR_TYPE, type);
    pb_msg(&g->node, NODE_ATTRIBUTE, &g->scratch);
}

void dc_export_attr_int(dc_export *g, const char *name, int64_t v)
{
    pb_int(&g->scratch, ATTR_I, v);
    attr_end(g, name, ATTR_INT);
}

void dc_export_attr_float(dc_export *g, const char *name, float v)
{
    pb_float(&g->scratch, ATTR_F, v);
    attr_end(g, name, ATTR_FLOAT);
}

void dc_export_attr_string(dc_export *g, const char *name, const char *v)
{
    pb_str(&g->scratch, ATTR_S, v);
    attr_end(g, name, ATTR_STRING);
}

void dc_export_attr_ints(dc_export *g, const char *name, const int64_t *v, int n)
{
    for (int i = 0; i < n; i++) pb_int(&g->scratch, ATTR_INTS, v[i]);
    attr_end(g, name, ATTR_INTS_TYPE);
}

static dc_status initializer(dc_export *g, const char *name, const int64_t *dims, int ndims, int type,
                             const void *data, size_t elem)
{
    pb *t = &g->scratch;
    size_t count = 1;
    for (int i = 0; i < ndims; i++) {
        pb_int(t, TENSOR_DIMS, dims[i]);
        count *= (size_t)dims[i];
    }
    pb_int(t, TENSOR_DATA_TYPE, type);
    pb_str(t, TENSOR_NAME, name);
    /* raw_data is little-endian whatever the host. */
    pb_key(t, TENSOR_RAW_DATA, WIRE_LEN);
    pb_varint(t, count * elem);
    const unsigned char *src = data;
    for (size_t i = 0; i < count; i++) {
        uint64_t v = 0;
        if (elem == 4) {
            uint32_t u;
            memcpy(&u, src + 4 * i, 4);
            v = u;
        } else {
            memcpy(&v, src + 8 * i, 8);
        }
        unsigned char le[8];
        for (size_t j = 0; j < elem; j++) le[j] = (unsigned char)(v >> (8 * j));
        pb_raw(t, le, elem);
    }
    pb_msg(&g->inits, GRAPH_INITIALIZER, t);
    return g->inits.oom ? dc_fail(DC_ERR_NOMEM, "out of memory building the ONNX graph") : DC_OK;
}

dc_status dc_export_initializer(dc_export *g, const char *name, const int64_t *dims, int ndims, const float *data)
{
    return initializer(g, name, dims, ndims, TENSOR_FLOAT, data, 4);
}

dc_status dc_export_initializer_i64(dc_export *g, const char *name, const int64_t *dims, int ndims,
                                    const int64_t *data)
{
    return initializer(g, name, dims, ndims, TENSOR_INT64, data, 8);
}

void dc_export_name(const dc_export_layer *x, const char *what, char *buf, size_t len)
{
    snprintf(buf, len, "layer%d.%s.%s", x->index, x->spec->kind->token, what);
}

dc_status dc_export_param(dc_export_layer *x, const char *what, const int64_t *dims, int ndims, const float *data)
{
    dc_export *g = x->g;
    if (ndims > DC_NPY_MAX_DIMS) return dc_fail(DC_ERR_INVALID_ARG, "parameter %s: too many dimensions", what);
    if (g->nparams == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        param *np = realloc(g->params, (size_t)cap * sizeof *np);
        if (!np) return dc_fail(DC_ERR_NOMEM, "out of memory listing parameters");
        g->params = np;
        g->cap = cap;
    }
    param *p = &g->params[g->nparams++];
    memset(p, 0, sizeof *p);
    dc_export_name(x, what, p->name, sizeof p->name);
    p->array.name = NULL; /* set when the list stops moving */
    p->array.ndims = ndims;
    memcpy(p->array.dims, dims, (size_t)ndims * sizeof *dims);
    p->array.data = data;
    return DC_OK;
}

dc_status dc_export_act(dc_export *g, dc_act act, const char *in, const char *out)
{
    static const char *const op[] = {
        [DC_ACT_NONE] = "Identity", [DC_ACT_RELU] = "Relu", [DC_ACT_SIGMOID] = "Sigmoid",
        [DC_ACT_TANH] = "Tanh", [DC_ACT_LEAKY_RELU] = "LeakyRelu",
    };
    if ((unsigned)act >= sizeof op / sizeof op[0] || !op[act])
        return dc_fail(DC_ERR_UNSUPPORTED, "activation %s has no ONNX operator here", dc_act_name(act));
    DC_TRY(dc_export_node(g, op[act], &in, 1, out));
    if (act == DC_ACT_LEAKY_RELU) dc_export_attr_float(g, "alpha", DC_LEAKY_SLOPE);
    return DC_OK;
}

/* ---- the model ---------------------------------------------------------------------------- */

/* ValueInfoProto of an NCHW float tensor with symbolic batch, height and width. */
static void value_info(pb *out, int field, const char *name, int channels)
{
    pb dim = {0}, shape = {0}, tensor = {0}, type = {0}, vi = {0};
    const char *params[4] = {"batch", NULL, "height", "width"};
    for (int i = 0; i < 4; i++) {
        if (params[i])
            pb_str(&dim, DIM_PARAM, params[i]);
        else
            pb_int(&dim, DIM_VALUE, channels);
        pb_msg(&shape, SHAPE_DIM, &dim);
    }
    pb_int(&tensor, TYPE_ELEM, TENSOR_FLOAT);
    pb_msg(&tensor, TYPE_SHAPE, &shape);
    pb_msg(&type, TYPE_TENSOR, &tensor);
    pb_str(&vi, VALUE_NAME, name);
    pb_msg(&vi, VALUE_TYPE, &type);
    pb_msg(out, field, &vi);
    out->oom |= dim.oom | shape.oom | tensor.oom | type.oom;
    free(dim.p);
    free(shape.p);
    free(tensor.p);
    free(type.p);
    free(vi.p);
}

static dc_status onnx_bytes(dc_export *g, const dc_arch *arch, int in_c, const char *producer_version,
                            void **data, size_t *size)
{
    pb graph = {0}, model = {0}, opset = {0};
    char spec[DC_SPEC_MAX], doc[DC_SPEC_MAX + 64];
    dc_arch_format(arch, spec, sizeof spec);
    snprintf(doc, sizeof doc, "dae-cl denoiser: %s", spec);
    pb_raw(&graph, g->nodes.p, g->nodes.len);
    pb_str(&graph, GRAPH_NAME, "dae_cl_denoiser");
    pb_raw(&graph, g->inits.p, g->inits.len);
    value_info(&graph, GRAPH_INPUT, "input", in_c);
    value_info(&graph, GRAPH_OUTPUT, "output", in_c);
    pb_int(&model, MODEL_IR_VERSION, DC_ONNX_IR_VERSION);
    pb_str(&model, MODEL_PRODUCER_NAME, "dae-cl");
    pb_str(&model, MODEL_PRODUCER_VERSION, producer_version ? producer_version : "");
    pb_str(&model, MODEL_DOC, doc);
    pb_msg(&model, MODEL_GRAPH, &graph);
    pb_str(&opset, OPSET_DOMAIN, "");
    pb_int(&opset, OPSET_VERSION, DC_ONNX_OPSET);
    pb_msg(&model, MODEL_OPSET_IMPORT, &opset);
    free(graph.p);
    free(opset.p);
    if (model.oom || graph.oom || opset.oom) {
        free(model.p);
        return dc_fail(DC_ERR_NOMEM, "out of memory writing the ONNX file");
    }
    *data = model.p;
    *size = model.len;
    return DC_OK;
}

/* The parameters, then "residual": [1] when the model's output is input − its last layer's, [0]
 * otherwise (a reader rebuilding the model needs it; the weights alone do not say). */
static dc_status npz_bytes(dc_export *g, const dc_arch *arch, void **data, size_t *size)
{
    dc_npy_array *arrays = calloc((size_t)g->nparams + 1, sizeof *arrays);
    if (!arrays) return dc_fail(DC_ERR_NOMEM, "out of memory writing the .npz");
    for (int i = 0; i < g->nparams; i++) {
        arrays[i] = g->params[i].array;
        arrays[i].name = g->params[i].name;
    }
    static const float flag[2] = {0, 1};
    arrays[g->nparams] = (dc_npy_array){.name = "residual", .ndims = 1, .dims = {1}, .data = &flag[arch->residual ? 1 : 0]};
    dc_status s = dc_npz_build(arrays, g->nparams + 1, data, size);
    free(arrays);
    return s;
}

static dc_status walk(dc_export *g, const dc_arch *arch, int in_c, const dc_layer_state *layers,
                      const float *params)
{
    char names[DC_MAX_LAYERS][48];
    for (int i = 0; i < arch->nlayers; i++) {
        const dc_layer_spec *L = &arch->layers[i];
        if (i == arch->nlayers - 1)
            snprintf(names[i], sizeof names[i], arch->residual ? "noise" : "output");
        else
            snprintf(names[i], sizeof names[i], "layer%d.%s", i + 1, L->kind->token);
        dc_export_layer x = {
            .g = g, .index = i + 1, .spec = L, .state = &layers[i], .in_c = i ? layers[i - 1].c : in_c,
            .params = params, .in = i ? names[i - 1] : "input", .ref = L->ref >= 0 ? names[L->ref] : NULL,
            .out = names[i],
        };
        if (!L->kind->export_onnx)
            return dc_fail(DC_ERR_UNSUPPORTED, "layer %d (%s): this layer kind cannot be exported", i + 1,
                           L->kind->token);
        dc_status s = L->kind->export_onnx(&x);
        if (s) return dc_fail(s, "layer %d (%s): %s", i + 1, L->kind->token, dc_error_detail());
    }
    if (arch->residual) { /* the residual head: output = input − predicted noise */
        const char *in[2] = {"input", names[arch->nlayers - 1]};
        DC_TRY(dc_export_node(g, "Sub", in, 2, "output"));
    }
    close_node(g);
    return g->nodes.oom ? dc_fail(DC_ERR_NOMEM, "out of memory building the ONNX graph") : DC_OK;
}

dc_status dc_export_model(const dc_arch *spec, int in_c, int h, int w, const float *params, size_t nparams,
                          dc_export_format format, const char *producer_version, void **data, size_t *size)
{
    dc_arch bound = *spec; /* conv:C has in_c filters */
    dc_arch_bind(&bound, in_c);
    const dc_arch *arch = &bound;
    dc_layer_state layers[DC_MAX_LAYERS];
    size_t np = 0;
    DC_TRY(dc_model_plan(arch, in_c, h, w, layers, &np, NULL));
    if (np != nparams)
        return dc_fail(DC_ERR_FORMAT, "%zu parameters given, the architecture needs %zu", nparams, np);
    dc_export g = {0};
    dc_status s = walk(&g, arch, in_c, layers, params);
    if (!s) s = format == DC_EXPORT_NPZ ? npz_bytes(&g, arch, data, size) : onnx_bytes(&g, arch, in_c, producer_version, data, size);
    free(g.nodes.p);
    free(g.inits.p);
    free(g.node.p);
    free(g.scratch.p);
    free(g.params);
    return s;
}

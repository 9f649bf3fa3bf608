/* Exporting a model for other programs: an ONNX graph (standard operators, opset
 * DC_ONNX_OPSET, weights as initializers, symbolic batch/height/width) or the raw weights as a
 * NumPy .npz.
 *
 * The model is walked layer by layer and each kind's registry descriptor (daecl/layer.h,
 * `export` hook) says what it becomes: its parameters (dc_export_param: name and shape in
 * dae-cl's own layout, the .npz entries) and its ONNX nodes (dc_export_node + attributes,
 * dc_export_initializer for the tensors they read). A kind without a hook cannot be exported.
 *
 * The protobuf is written by a small writer here (export.c), not protobuf-c: the ModelProto
 * subset needed is seven message types with scalar, string and nested fields, and the file is
 * checked in CI by onnx's own checker and shape inference, OpenCV and PyTorch
 * (tests/ci/export.sh). Field numbers are onnx.proto's (onnx 1.12, IR version 7). */
#ifndef DAECL_EXPORT_H
#define DAECL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/model.h"

#define DC_ONNX_OPSET 13
#define DC_ONNX_IR_VERSION 7

typedef enum dc_export_format { DC_EXPORT_ONNX, DC_EXPORT_NPZ } dc_export_format;

typedef struct dc_export dc_export; /* the graph and parameter list under construction */

/* One layer's export, given to its kind's hook. */
typedef struct dc_export_layer {
    dc_export *g;
    int index;                   /* 1-based, the # of `dae-cl model`'s table */
    const dc_layer_spec *spec;
    const dc_layer_state *state;
    int in_c;                    /* input channels */
    const float *params;         /* the model's flat parameters (state->w_off, b_off index them) */
    const char *in, *ref;        /* ONNX names of the input and (merges) the named layer's output */
    const char *out;             /* the name the layer's last node must write */
} dc_export_layer;

/* "layer3.conv.weight" for what = "weight": the layer's parameter names. */
void dc_export_name(const dc_export_layer *x, const char *what, char *buf, size_t len);
/* Record a parameter tensor (dae-cl layout, float32) for the .npz under dc_export_name. */
dc_status dc_export_param(dc_export_layer *x, const char *what, const int64_t *dims, int ndims,
                          const float *data);
/* ONNX initializers: float32 or int64 tensors named `name`. */
dc_status dc_export_initializer(dc_export *g, const char *name, const int64_t *dims, int ndims,
                                const float *data);
dc_status dc_export_initializer_i64(dc_export *g, const char *name, const int64_t *dims, int ndims,
                                    const int64_t *data);
/* Begin an ONNX node (the previous one is complete); inputs may include "" (absent optional
 * input). Attributes below apply to the node begun last. */
dc_status dc_export_node(dc_export *g, const char *op_type, const char *const *inputs, int ninputs,
                         const char *output);
void dc_export_attr_int(dc_export *g, const char *name, int64_t v);
void dc_export_attr_float(dc_export *g, const char *name, float v);
void dc_export_attr_string(dc_export *g, const char *name, const char *v);
void dc_export_attr_ints(dc_export *g, const char *name, const int64_t *v, int n);
/* The activation's node from `in` to `out` (Relu, Sigmoid, Tanh, LeakyRelu alpha 0.3); none is
 * an Identity. */
dc_status dc_export_act(dc_export *g, dc_act act, const char *in, const char *out);

/* The model (architecture, in_c x h x w images: h and w only check the plan; the graph takes
 * any size) as an ONNX file or .npz, in memory (*data malloc'd, the caller frees).
 * `producer_version` is written into the ONNX file. */
dc_status dc_export_model(const dc_arch *arch, int in_c, int h, int w, const float *params, size_t nparams,
                          dc_export_format format, const char *producer_version, void **data, size_t *size);

#endif

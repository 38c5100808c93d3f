"""Driver settings for the ``fpga`` backend: what FINN's driver template needs, plus host tails.

FINN's ``get_driver_shapes`` takes the folded input shape from the first dataflow node and the
folded output shapes from the last ones, and packs them byte-aligned; the same is computed
here from the folded dataflow model, so the settings exist (and the fake-device tests run)
before a bitstream does. A real bitstream build replaces them with FINN's own
``settings.json`` (``io_shape_dict``) and keeps the host tails.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _packed(folded: tuple[int, ...], bits: int) -> tuple[int, ...]:
    return (*folded[:-1], int(np.ceil(folded[-1] * bits / 8)))


def predict_driver_settings(dataflow_model, tails: list[dict[str, Any]], max_batch: int = 1) -> dict[str, Any]:
    """Settings from the folded dataflow partition model (one input, outputs in graph order)."""
    from qonnx.custom_op.registry import getCustomOp

    model = dataflow_model
    if len(model.graph.input) != 1:
        raise ValueError(f"accelerator must have one input, has {len(model.graph.input)}")
    if len(model.graph.output) != len(tails):
        raise ValueError(f"accelerator has {len(model.graph.output)} outputs but {len(tails)} host tails")
    graph_in = model.graph.input[0].name
    first = getCustomOp(model.find_consumer(graph_in))
    idt = first.get_input_datatype(0)
    settings: dict[str, Any] = {
        "idt": [idt.name],
        "ishape_normal": [list(first.get_normal_input_shape(0))],
        "ishape_folded": [list(first.get_folded_input_shape(0))],
        "ishape_packed": [list(_packed(tuple(first.get_folded_input_shape(0)), idt.bitwidth()))],
        "idma_names": ["idma0"],
        "odt": [], "oshape_normal": [], "oshape_folded": [], "oshape_packed": [], "odma_names": [],
        "output_tails": [],
        "max_batch": int(max_batch),
    }
    positions = {o.name: i for i, o in enumerate(model.graph.output)}
    for tail in tails:
        stream = tail.get("stream_name", tail["integer_name"])
        if stream not in positions:
            raise ValueError(f"accelerator has no output stream {stream!r}")
        index = positions[stream]  # FINN numbers the output DMAs in graph-output order
        graph_out = model.graph.output[index]
        producer = model.find_producer(graph_out.name)
        out_index = list(producer.output).index(graph_out.name)
        op = getCustomOp(producer)
        odt = op.get_output_datatype(out_index)
        normal = list(op.get_normal_output_shape(out_index))
        if int(np.prod(normal)) != int(np.prod(tail["integer_shape"])):
            raise ValueError(f"output {index}: stream shape {normal} does not match tail {tail['integer_shape']}")
        folded = tuple(op.get_folded_output_shape(out_index))
        settings["odt"].append(odt.name)
        settings["oshape_normal"].append(list(tail["integer_shape"]))
        settings["oshape_folded"].append(list(folded))
        settings["oshape_packed"].append(list(_packed(folded, odt.bitwidth())))
        settings["odma_names"].append(f"odma{index}")
        settings["output_tails"].append(tail)
    return settings


def merge_finn_settings(predicted: dict[str, Any], finn_settings: dict[str, Any]) -> dict[str, Any]:
    """FINN's generated io_shape_dict wins for shapes/types/DMA names; our tails are kept."""
    io = finn_settings["driver_information"]["io_shape_dict"]
    merged = dict(predicted)
    for key in ("idt", "ishape_normal", "ishape_folded", "ishape_packed", "idma_names",
                "odt", "oshape_normal", "oshape_folded", "oshape_packed", "odma_names"):
        if key in io:
            merged[key] = [str(v) if isinstance(v, str) else v for v in io[key]]
    merged["odt"] = [str(d).replace("DataType.", "").replace("DataType[", "").strip("]'\"") for d in merged["odt"]]
    merged["idt"] = [str(d).replace("DataType.", "").replace("DataType[", "").strip("]'\"") for d in merged["idt"]]
    return merged

"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as an ONNX graph.

dlib runs this network on the CPU without BLAS (``dlib-bin``), about 75 ms per 150 px chip on
one core; ONNX Runtime runs the same weights in a fraction of that. This module reads the
weights from dlib's own serialized file (no converted copy is shipped or downloaded) and builds
the network dlib's ``dnn_face_recognition_ex.cpp`` defines:

- input: RGB chip minus dlib's channel means, divided by 256;
- ``con 32 7x7 /2`` -> affine -> relu -> ``max_pool 3x3 /2``;
- residual levels of 32 (3 blocks), 64 (4), 128 (3), 256 (3) and 256 (1) filters; the first
  block of every level after the first halves the size (a ``3x3 /2`` convolution beside a
  ``2x2 /2`` average pool of its input);
- global average pool -> ``fc_no_bias 128``.

Layout of the file (dlib's ``serialize``): integers are a length byte (high bit = negative) and
that many little-endian bytes; strings are an integer length and the bytes; a tensor is version
2, ``num_samples, k, nr, nc`` and that many little-endian float32. Each ``con_4``/``affine_``/
``fc_2`` layer name is followed by its parameter tensor (``fc_2``: after its output and input
counts), in forward order after the input layer.
Where dlib adds two tensors of different shapes (a residual shortcut with fewer channels, or a
``/2`` convolution one pixel smaller than the pool beside it), it zero-pads the smaller at the
end of each axis, as done here with ``Pad``. Affine layers (dlib's frozen batch norm) are folded
into the convolution before them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: dlib's ``input_rgb_image`` channel means (R, G, B) and scale.
INPUT_MEAN = np.array([122.782, 117.001, 104.298], np.float32)
INPUT_SCALE = 1.0 / 256.0
CHIP_SIZE = 150
#: Residual levels in forward order: (filters, blocks); every level after the first starts
#: with a block that halves the size.
LEVELS = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))
EMBEDDING_SIZE = 128
_LAYER_NAME = re.compile(rb"\x01(\x05con_4|\x07affine_|\x04fc_2)")


@dataclass(frozen=True)
class Conv:
    """A convolution with the affine layer after it folded in: ``weight`` (out, in, kh, kw)."""

    weight: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int


def read_layers(path: str | Path) -> tuple[list[Conv], np.ndarray]:
    """The 29 folded convolutions and the (256, 128) ``fc_no_bias`` matrix from dlib's file."""
    data = Path(path).read_bytes()
    reader = _Reader(data)
    convs: list[Conv] = []
    pending: tuple[np.ndarray, np.ndarray, int, int] | None = None
    fc: np.ndarray | None = None
    for match in _LAYER_NAME.finditer(data):
        reader.pos = match.end()
        name = match.group(1)[1:]
        if name == b"fc_2":
            outputs, inputs = reader.integer(), reader.integer()
            params = reader.tensor()
            if outputs * inputs != params.size:
                raise ValueError(f"{path}: fc layer of unexpected size {params.size}")
            fc = params.reshape(inputs, outputs)
            continue
        params = reader.tensor()
        if name == b"con_4":
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(7))
            if rows != cols or stride_y != stride_x or pad_y != pad_x:
                raise ValueError(f"{path}: unexpected non-square convolution at byte {match.start()}")
            if pending is not None:
                raise ValueError(f"{path}: convolution without its affine layer at byte {match.start()}")
            inputs = (params.size - filters) // (filters * rows * cols)
            if inputs * filters * rows * cols + filters != params.size:
                raise ValueError(f"{path}: convolution parameters of unexpected size {params.size}")
            weight = params[: -filters].reshape(filters, inputs, rows, cols)
            pending = (weight, params[-filters:], stride_y, pad_y)
        elif name == b"affine_":
            if pending is None:
                raise ValueError(f"{path}: affine layer without a convolution at byte {match.start()}")
            weight, bias, stride, padding = pending
            gamma, beta = np.split(params, 2)
            if gamma.size != weight.shape[0]:
                raise ValueError(f"{path}: affine of {gamma.size} channels after {weight.shape[0]} filters")
            convs.append(Conv(weight * gamma[:, None, None, None], bias * gamma + beta, stride, padding))
            pending = None
    expected = 1 + 2 * sum(blocks for _, blocks in LEVELS)
    if len(convs) != expected or fc is None or fc.shape != (LEVELS[-1][0], EMBEDDING_SIZE):
        raise ValueError(f"{path}: found {len(convs)} convolutions (want {expected}) and fc {None if fc is None else fc.shape}")
    return convs, fc


def build_onnx(path: str | Path) -> bytes:
    """A serialized ONNX model: input ``chip`` (1, 3, 150, 150) float32 already normalised by
    :func:`normalise`, output ``embedding`` (1, 128), unnormalised as dlib returns it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    convs, fc = read_layers(path)
    nodes: list = []
    weights: list = []
    counter = itertools.count()

    def fresh(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def relu(x: str) -> str:
        y = fresh("relu")
        nodes.append(helper.make_node("Relu", [x], [y]))
        return y

    def conv(x: str, layer: Conv, activate: bool) -> str:
        w, b, y = fresh("w"), fresh("b"), fresh("conv")
        weights.extend([numpy_helper.from_array(layer.weight.astype(np.float32), w),
                        numpy_helper.from_array(layer.bias.astype(np.float32), b)])  # fmt: skip
        kernel = layer.weight.shape[2]
        nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[kernel, kernel],
                                      strides=[layer.stride] * 2, pads=[layer.padding] * 4))  # fmt: skip
        return relu(y) if activate else y

    def pad(x: str, channels: int, size: int, to_channels: int, to_size: int) -> str:
        if (channels, size) == (to_channels, to_size):
            return x
        pads, y = fresh("pads"), fresh("pad")
        amounts = np.array([0, 0, 0, 0, 0, to_channels - channels, to_size - size, to_size - size], np.int64)
        weights.append(numpy_helper.from_array(amounts, pads))
        nodes.append(helper.make_node("Pad", [x, pads], [y], mode="constant"))
        return y

    layers = iter(convs)
    stem = next(layers)
    x = conv("chip", stem, activate=True)
    size = _out_size(CHIP_SIZE, stem.weight.shape[2], stem.stride, stem.padding)
    pooled = fresh("maxpool")
    nodes.append(helper.make_node("MaxPool", [x], [pooled], kernel_shape=[3, 3], strides=[2, 2]))
    x, size, channels = pooled, _out_size(size, 3, 2, 0), convs[0].weight.shape[0]
    for level, (filters, blocks) in enumerate(LEVELS):
        for block in range(blocks):
            first, second = next(layers), next(layers)
            branch = conv(conv(x, first, activate=True), second, activate=False)
            branch_size = _out_size(_out_size(size, 3, first.stride, first.padding), 3, 1, second.padding)
            shortcut, shortcut_size = x, size
            if level > 0 and block == 0:
                shortcut, shortcut_size = fresh("avgpool"), _out_size(size, 2, 2, 0)
                nodes.append(helper.make_node("AveragePool", [x], [shortcut], kernel_shape=[2, 2], strides=[2, 2]))
            out_size = max(branch_size, shortcut_size)
            summed = fresh("add")
            nodes.append(helper.make_node("Add", [pad(branch, filters, branch_size, filters, out_size),
                                                  pad(shortcut, channels, shortcut_size, filters, out_size)],
                                          [summed]))  # fmt: skip
            x, size, channels = relu(summed), out_size, filters
    pooled, flat = fresh("gap"), fresh("flat")
    nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled]))
    nodes.append(helper.make_node("Flatten", [pooled], [flat]))
    weights.append(numpy_helper.from_array(fc.astype(np.float32), "fc"))
    nodes.append(helper.make_node("MatMul", [flat, "fc"], ["embedding"]))
    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chip", TensorProto.FLOAT, [1, 3, CHIP_SIZE, CHIP_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, EMBEDDING_SIZE])],
        initializer=weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mirrorset")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def normalise(chip: np.ndarray) -> np.ndarray:
    """dlib's input layer: (150, 150, 3) uint8 RGB chip -> (1, 3, 150, 150) float32."""
    if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3) or chip.dtype != np.uint8:
        raise ValueError(f"need a ({CHIP_SIZE}, {CHIP_SIZE}, 3) uint8 chip, got {chip.dtype} {chip.shape}")
    return ((chip.astype(np.float32) - INPUT_MEAN) * INPUT_SCALE).transpose(2, 0, 1)[None].copy()


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class _Reader:
    """dlib's serialized integers and tensors, from ``pos``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def integer(self) -> int:
        head = self.data[self.pos]
        size, negative = head & 0x0F, bool(head & 0x80)
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if negative else value

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ValueError(f"dlib tensor version {version} at byte {self.pos} (only 2 is known)")
        count = int(np.prod([self.integer() for _ in range(4)]))
        if self.pos + 4 * count > len(self.data):
            raise ValueError(f"dlib tensor of {count} floats at byte {self.pos} runs past the end: truncated file")
        values = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float32)
        self.pos += 4 * count
        return values

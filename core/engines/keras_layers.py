"""Keras 3 layers that deepface's Keras 2 models use but Keras 3 no longer ships.

Written with ``keras.ops`` only, so they run on every Keras 3 backend (TensorFlow, torch, JAX).
Importing this module imports Keras; import it lazily from plugin code.

* :class:`LocallyConnected2D` - an unshared-weights convolution (Keras 2's layer of that name,
  ``implementation=1`` weight layout), used by Facebook's DeepFace.
* :func:`hard_sigmoid_keras2` - Keras 2's ``hard_sigmoid`` (``clip(0.2 x + 0.5, 0, 1)``); Keras 3
  redefined ``hard_sigmoid`` as ``relu6(x + 3) / 6``, which changes every model that used it.
"""

from __future__ import annotations

from typing import Any

from facepipe.engines.tf_logging import quiet_tensorflow_logs

quiet_tensorflow_logs()  # before this module's own (first) import of keras

import keras  # noqa: E402
from keras import ops  # noqa: E402


def _pair(value: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


@keras.saving.register_keras_serializable(package="facepipe")
class LocallyConnected2D(keras.layers.Layer):
    """2-D convolution whose filters are *not* shared across positions ('valid' padding only).

    Output position ``(i, j)`` sees the input window starting at ``(i*sh, j*sw)`` of size
    ``kernel_size`` and has its own weights.  Weights use Keras 2's default layout so that
    deepface's ``.h5`` files load unchanged:

    * ``kernel``: ``(out_h * out_w, kh * kw * in_channels, filters)``; positions in row-major
      order, each window flattened in ``(row, col, channel)`` order;
    * ``bias``: ``(out_h, out_w, filters)``.

    Only ``channels_last`` input ``(N, H, W, C)`` with known ``H, W, C`` is supported.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if str(padding).lower() != "valid":
            raise ValueError(f"LocallyConnected2D supports only padding='valid', got {padding!r}")
        if int(filters) < 1:
            raise ValueError(f"filters must be >= 1, got {filters}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = "valid"
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _output_hw(self, height: int, width: int) -> tuple[int, int]:
        kh, kw = self.kernel_size
        sh, sw = self.strides
        out_h = (height - kh) // sh + 1
        out_w = (width - kw) // sw + 1
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"LocallyConnected2D: input {height}x{width} is smaller than the kernel {kh}x{kw}"
            )
        return out_h, out_w

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        _, height, width, channels = input_shape
        if height is None or width is None or channels is None:
            raise ValueError(
                f"LocallyConnected2D needs a fully known (H, W, C) input shape, got {input_shape}"
            )
        self.out_h, self.out_w = self._output_hw(int(height), int(width))
        self.in_channels = int(channels)
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.out_h * self.out_w, kh * kw * self.in_channels, self.filters),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.out_h, self.out_w, self.filters), initializer=self.bias_initializer
            )
        else:
            self.bias = None
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: self.in_channels})

    def call(self, inputs: Any) -> Any:
        kh, kw = self.kernel_size
        sh, sw = self.strides
        oh, ow = self.out_h, self.out_w
        positions, channels = oh * ow, self.in_channels
        # Positions-major layout (H, W, N, C): each kernel tap is then one strided slice that
        # reshapes to (positions, N, C), and the per-position products are a batched matmul.
        # Summing tap by tap never materialises the (N, positions, kh*kw*C) patch tensor
        # (500 MB for DeepFace's L4 at 32 faces), which is also faster for batches.
        x = ops.transpose(inputs, (1, 2, 0, 3))
        kernel = ops.reshape(self.kernel, (positions, kh * kw, channels, self.filters))
        out = None
        for i in range(kh):
            for j in range(kw):
                tap = x[i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
                tap = ops.reshape(tap, (positions, -1, channels))
                term = ops.matmul(tap, kernel[:, i * kw + j])  # (positions, N, filters)
                out = term if out is None else out + term
        out = ops.transpose(ops.reshape(out, (oh, ow, -1, self.filters)), (2, 0, 1, 3))
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out) if self.activation is not None else out

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(f"LocallyConnected2D needs a known input height and width, got {input_shape}")
        out_h, out_w = self._output_hw(int(height), int(width))
        return (input_shape[0], out_h, out_w, self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


def hard_sigmoid_keras2(x: Any) -> Any:
    """Keras 2's hard sigmoid: ``clip(0.2 * x + 0.5, 0, 1)`` (Keras 3's uses slope 1/6)."""
    return ops.clip(x * 0.2 + 0.5, 0.0, 1.0)


__all__ = ["LocallyConnected2D", "hard_sigmoid_keras2"]

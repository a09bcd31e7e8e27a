"""Inception-ResNet-v1 (FaceNet, Szegedy et al. 2016; the layout of D. Sandberg's facenet
models) as a Keras 3 functional model, shared by the Facenet (128-d) and Facenet512 plugins.

The layer order matters: deepface's ``.h5`` files are loaded by position, and a functional
model lists its layers by graph depth, ties broken by branch order.  So every block below
keeps the published branch order, and the number of layers between each weighted layer and the
merge that follows it, of the network deepface saved.
"""

from __future__ import annotations

from typing import Any

# BatchNorm settings of the FaceNet graph (no gamma: scale=False).
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.995


def _conv_bn(x: Any, filters: int, kernel: int | tuple[int, int], name: str, *,
             strides: int = 1, padding: str = "same", activation: bool = True) -> Any:
    """Conv (no bias) -> BatchNorm (no scale) -> optional ReLU."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(axis=3, momentum=_BN_MOMENTUM, epsilon=_BN_EPS, scale=False,
                                  name=f"{name}_BatchNorm")(x)
    if activation:
        x = layers.Activation("relu", name=f"{name}_Activation")(x)
    return x


def _residual(x: Any, branches: list[Any], channels: int, scale: float, name: str, activation: bool) -> Any:
    """Concatenate the branches, project back to ``channels`` (1x1 conv with bias), scale, add."""
    from keras import layers

    mixed = layers.Concatenate(axis=3, name=f"{name}_Concatenate")(branches)
    up = layers.Conv2D(channels, 1, padding="same", use_bias=True, name=f"{name}_Conv2d_1x1")(mixed)
    if scale != 1.0:
        up = layers.Rescaling(scale, name=f"{name}_ScaleSum")(up)
    x = layers.Add(name=f"{name}_Add")([x, up])
    if activation:
        x = layers.Activation("relu", name=f"{name}_Activation")(x)
    return x


def _block35(x: Any, name: str, scale: float = 0.17, activation: bool = True) -> Any:
    b0 = _conv_bn(x, 32, 1, f"{name}_Branch_0_Conv2d_1x1")
    b1 = _conv_bn(x, 32, 1, f"{name}_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 32, 3, f"{name}_Branch_1_Conv2d_0b_3x3")
    b2 = _conv_bn(x, 32, 1, f"{name}_Branch_2_Conv2d_0a_1x1")
    b2 = _conv_bn(b2, 32, 3, f"{name}_Branch_2_Conv2d_0b_3x3")
    b2 = _conv_bn(b2, 32, 3, f"{name}_Branch_2_Conv2d_0c_3x3")
    return _residual(x, [b0, b1, b2], 256, scale, name, activation)


def _block17(x: Any, name: str, scale: float = 0.10, activation: bool = True) -> Any:
    b0 = _conv_bn(x, 128, 1, f"{name}_Branch_0_Conv2d_1x1")
    b1 = _conv_bn(x, 128, 1, f"{name}_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 128, (1, 7), f"{name}_Branch_1_Conv2d_0b_1x7")
    b1 = _conv_bn(b1, 128, (7, 1), f"{name}_Branch_1_Conv2d_0c_7x1")
    return _residual(x, [b0, b1], 896, scale, name, activation)


def _block8(x: Any, name: str, scale: float = 0.20, activation: bool = True) -> Any:
    b0 = _conv_bn(x, 192, 1, f"{name}_Branch_0_Conv2d_1x1")
    b1 = _conv_bn(x, 192, 1, f"{name}_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 192, (1, 3), f"{name}_Branch_1_Conv2d_0b_1x3")
    b1 = _conv_bn(b1, 192, (3, 1), f"{name}_Branch_1_Conv2d_0c_3x1")
    return _residual(x, [b0, b1], 1792, scale, name, activation)


def _reduction_a(x: Any) -> Any:
    from keras import layers

    b0 = _conv_bn(x, 384, 3, "Mixed_6a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 192, 1, "Mixed_6a_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 192, 3, "Mixed_6a_Branch_1_Conv2d_0b_3x3")
    b1 = _conv_bn(b1, 256, 3, "Mixed_6a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    pool = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_6a_Branch_2_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=3, name="Mixed_6a")([b0, b1, pool])


def _reduction_b(x: Any) -> Any:
    from keras import layers

    b0 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_0_Conv2d_0a_1x1")
    b0 = _conv_bn(b0, 384, 3, "Mixed_7a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 256, 3, "Mixed_7a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_2_Conv2d_0a_1x1")
    b2 = _conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_0b_3x3")
    b2 = _conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_1a_3x3", strides=2, padding="valid")
    pool = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_7a_Branch_3_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=3, name="Mixed_7a")([b0, b1, b2, pool])


def build_inception_resnet_v1(embedding_size: int = 128, name: str = "inception_resnet_v1") -> Any:
    """Inception-ResNet-v1 for 160x160x3 input -> ``embedding_size`` (Dense without bias + BN).

    245 weighted layers, in the order of deepface's ``facenet_weights.h5`` /
    ``facenet512_weights.h5``.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(160, 160, 3), name="input")
    # stem
    x = _conv_bn(inputs, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = _conv_bn(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    x = _conv_bn(x, 64, 3, "Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, name="MaxPool_3a_3x3")(x)
    x = _conv_bn(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    x = _conv_bn(x, 192, 3, "Conv2d_4a_3x3", padding="valid")
    x = _conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")
    # 5 x Inception-ResNet-A (17x17x256)
    for i in range(1, 6):
        x = _block35(x, f"Block35_{i}")
    x = _reduction_a(x)
    # 10 x Inception-ResNet-B (8x8x896)
    for i in range(1, 11):
        x = _block17(x, f"Block17_{i}")
    x = _reduction_b(x)
    # 5 x Inception-ResNet-C (3x3x1792), the last one unscaled and without ReLU
    for i in range(1, 6):
        x = _block8(x, f"Block8_{i}")
    x = _block8(x, "Block8_6", scale=1.0, activation=False)
    # head: average pool, (inference no-op) dropout, bottleneck
    x = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = layers.Dropout(0.2, name="Dropout")(x)
    x = layers.Dense(embedding_size, use_bias=False, name="Bottleneck")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPS, scale=False,
                                  name="Bottleneck_BatchNorm")(x)
    return keras.Model(inputs, x, name=name)

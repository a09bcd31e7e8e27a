"""The VGG-16 face network shared by VGG-Face and the Age / Gender / Race attribute models.

deepface's VGG-Face classifier and its three attribute models are one architecture: thirteen
3x3 convolutions in five max-pooled blocks, then ``fc6`` (a 7x7 convolution to 4096 channels)
and ``fc7`` (a 1x1 convolution to 4096), both ReLU, then a 1x1 convolution head (2622 identities
for VGG-Face, 101 ages, 2 genders, 6 races), flattened and soft-maxed.  Their ``.h5`` files hold
the same sixteen weighted layers in that order, so one builder serves all four.

Public API (stable; analyzers import it):

* :func:`build_vgg_face_trunk` - input -> fc7 feature map ``(N, 1, 1, 4096)`` (after ReLU).
* :func:`build_vgg_face_classifier` - trunk + 1x1 head + softmax: the model deepface's weight
  files are loaded into (``facepipe.engines.keras_h5.load_h5_positional``).
* :func:`vgg_face_descriptor` - from a classifier, the model that outputs the flattened fc7
  (the VGG-Face embedding), sharing the classifier's weights.
* :data:`FC7_LAYER` - the name of the fc7 layer in both models.

Kernels are created zero-initialised: the weights always come from a file, and random
initialisation of 134-145 M parameters would add ~6 s to every build.  Keras is imported inside
the functions so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

INPUT_SHAPE: tuple[int, int, int] = (224, 224, 3)
#: name of the fc7 convolution (4096 channels, ReLU) in the models built here
FC7_LAYER = "fc7"
#: (filters, number of 3x3 convolutions) per block, each block followed by a 2x2 max-pool
_BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
_INIT = "zeros"  # see the module docstring


def _trunk(x: Any) -> Any:
    """Apply the convolutional trunk to tensor ``x``; returns the fc7 tensor."""
    import keras

    layers = keras.layers
    for block, (filters, count) in enumerate(_BLOCKS, start=1):
        for i in range(1, count + 1):
            # deepface pads by one pixel then convolves 'valid': the same as 'same' for 3x3/stride 1
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=_INIT,
                              name=f"conv{block}_{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"pool{block}")(x)
    x = layers.Conv2D(4096, 7, activation="relu", kernel_initializer=_INIT, name="fc6")(x)
    x = layers.Dropout(0.5, name="fc6_dropout")(x)  # inert at inference; kept for fine-tuning
    x = layers.Conv2D(4096, 1, activation="relu", kernel_initializer=_INIT, name=FC7_LAYER)(x)
    return x


def build_vgg_face_trunk(input_shape: tuple[int, int, int] = INPUT_SHAPE) -> Any:
    """The VGG-Face trunk as a Keras model: ``(N, 224, 224, 3)`` -> fc7 ``(N, 1, 1, 4096)``.

    Weighted layers: the 15 convolutions (13 of 3x3, fc6, fc7) - the first 15 of deepface's files.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="input")
    return keras.Model(inputs, _trunk(inputs), name="vgg_face_trunk")


def build_vgg_face_classifier(
    num_classes: int,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    head_name: str = "predictions",
) -> Any:
    """Trunk + ``Conv2D(num_classes, 1x1)`` + flatten + softmax: ``(N, num_classes)`` probabilities.

    ``num_classes``: 2622 (VGG-Face), 101 (Age), 2 (Gender), 6 (Race).  The 16 weighted layers
    are in the order of deepface's ``.h5`` files, so ``load_h5_positional(model, path)`` loads them.
    """
    import keras

    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="input")
    x = _trunk(inputs)
    x = layers.Dropout(0.5, name="fc7_dropout")(x)
    x = layers.Conv2D(num_classes, 1, kernel_initializer=_INIT, name=head_name)(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, outputs, name=f"vgg_face_{num_classes}")


def vgg_face_descriptor(classifier: Any) -> Any:
    """The model ``input -> flatten(fc7)`` ``(N, 4096)`` sharing ``classifier``'s weights."""
    import keras

    fc7 = classifier.get_layer(FC7_LAYER).output
    flat = keras.layers.Flatten(name="fc7_flatten")(fc7)
    return keras.Model(classifier.inputs, flat, name="vgg_face_descriptor")


__all__ = [
    "FC7_LAYER",
    "INPUT_SHAPE",
    "build_vgg_face_classifier",
    "build_vgg_face_trunk",
    "vgg_face_descriptor",
]

"""Decision thresholds and the distance-to-confidence mapping.

Both tables are deepface's data, copied as numbers (fact sheet §6):

* :data:`THRESHOLDS` - the pre-tuned "same person" thresholds per model and metric; a pair is
  the same person iff ``distance <= threshold``.  Some values are ints (10, 64, 45) exactly as
  deepface stores them; :func:`threshold_for` always returns a ``float``.
* :data:`CONFIDENCE_PARAMS` - a logistic model per model and metric (fitted by deepface on its
  img1-img25 pairs with the mtcnn detector) plus the ranges used to spread its output over
  51-100 (same person) or 0-49 (different people).  Used by :func:`confidence`.

Model names are looked up case-insensitively, ignoring ``-``, ``_`` and spaces, so ``"VGG-Face"``,
``"vgg_face"`` and ``"vggface"`` (the recognizer plugins' module names) are the same model.
"""

from __future__ import annotations

import math
import re

from facepipe.errors import ConfigError, FacepipeError

#: the metric names the tables are keyed by
METRICS: tuple[str, ...] = ("cosine", "euclidean", "euclidean_l2", "angular")

#: where the numbers come from
SOURCE = "deepface 0.0.9x: deepface/config/threshold.py and deepface/config/confidence.py"

#: deepface's pre-tuned thresholds (fact sheet §6.1); "same person" iff distance <= threshold.
#: VGG-Face euclidean equals euclidean_l2 because its embeddings are already unit length.
THRESHOLDS: dict[str, dict[str, float]] = {
    "VGG-Face": {"cosine": 0.68, "euclidean": 1.17, "euclidean_l2": 1.17, "angular": 0.39},
    "Facenet": {"cosine": 0.40, "euclidean": 10, "euclidean_l2": 0.80, "angular": 0.33},
    "Facenet512": {"cosine": 0.30, "euclidean": 23.56, "euclidean_l2": 1.04, "angular": 0.35},
    "ArcFace": {"cosine": 0.68, "euclidean": 4.15, "euclidean_l2": 1.13, "angular": 0.39},
    "Dlib": {"cosine": 0.07, "euclidean": 0.6, "euclidean_l2": 0.4, "angular": 0.12},
    "SFace": {"cosine": 0.593, "euclidean": 10.734, "euclidean_l2": 1.055, "angular": 0.36},
    "OpenFace": {"cosine": 0.10, "euclidean": 0.55, "euclidean_l2": 0.55, "angular": 0.11},
    "DeepFace": {"cosine": 0.23, "euclidean": 64, "euclidean_l2": 0.64, "angular": 0.12},
    "DeepID": {"cosine": 0.015, "euclidean": 45, "euclidean_l2": 0.17, "angular": 0.04},
    "GhostFaceNet": {"cosine": 0.65, "euclidean": 35.71, "euclidean_l2": 1.10, "angular": 0.38},
    "Buffalo_L": {"cosine": 0.55, "euclidean": 0.6, "euclidean_l2": 1.1, "angular": 0.45},
}

#: deepface's confidence parameters (fact sheet §6.2); Buffalo_L has none.
CONFIDENCE_PARAMS: dict[str, dict[str, dict[str, float]]] = {
    "VGG-Face": {
        "cosine": {
            "w": -6.61254026479904, "b": 3.145549102667549, "normalizer": 0.979183,
            "denorm_min_true": 20.787978733113846, "denorm_max_true": 88.28484099529868,
            "denorm_min_false": 3.457832575746455, "denorm_max_false": 20.556681914175016,
        },
        "euclidean": {
            "w": -6.505124425537925, "b": 3.8912125488666436, "normalizer": 1.399416,
            "denorm_min_true": 17.794898757517597, "denorm_max_true": 76.47012030708339,
            "denorm_min_false": 6.82484246933999, "denorm_max_false": 16.443735520230746,
        },
        "euclidean_l2": {
            "w": -6.505124425537925, "b": 3.8912125488666436, "normalizer": 1.399416,
            "denorm_min_true": 17.794898757517597, "denorm_max_true": 76.47012030708339,
            "denorm_min_false": 6.82484246933999, "denorm_max_false": 16.443735520230746,
        },
        "angular": {
            "w": -5.035753663256314, "b": 0.2961597285248822, "normalizer": 0.493373,
            "denorm_min_true": 16.624506551373642, "denorm_max_true": 34.230717614698825,
            "denorm_min_false": 10.080199045102233, "denorm_max_false": 15.49607745347531,
        },
    },
    "Facenet": {
        "cosine": {
            "w": -6.502269165856082, "b": 1.679048923097668, "normalizer": 1.206694,
            "denorm_min_true": 41.790002608273234, "denorm_max_true": 77.17253153662926,
            "denorm_min_false": 0.7976712344840693, "denorm_max_false": 20.618350202170916,
        },
        "euclidean": {
            "w": -6.716177467853723, "b": 2.790978346203265, "normalizer": 18.735288,
            "denorm_min_true": 40.4423755909089, "denorm_max_true": 74.76412617567517,
            "denorm_min_false": 1.9356150486888306, "denorm_max_false": 25.840858374979504,
        },
        "euclidean_l2": {
            "w": -6.708710331202137, "b": 2.9094193067398195, "normalizer": 1.553508,
            "denorm_min_true": 40.4509428022908, "denorm_max_true": 75.45756719896039,
            "denorm_min_false": 2.189644991619842, "denorm_max_false": 30.555931000001184,
        },
        "angular": {
            "w": -6.371147050396505, "b": 0.6766460615182355, "normalizer": 0.56627,
            "denorm_min_true": 24.327312950719133, "denorm_max_true": 45.802357900723386,
            "denorm_min_false": 5.063533287198758, "denorm_max_false": 16.95267765757785,
        },
    },
    "Facenet512": {
        "cosine": {
            "w": -5.868251768046832, "b": 0.8674084834913275, "normalizer": 1.384316,
            "denorm_min_true": 40.700922463435305, "denorm_max_true": 62.19495119465813,
            "denorm_min_false": 0.6687247052303562, "denorm_max_false": 39.96947059787277,
        },
        "euclidean": {
            "w": -6.742961485008033, "b": 2.61949356815704, "normalizer": 40.771751,
            "denorm_min_true": 23.391566956420913, "denorm_max_true": 75.20184708761875,
            "denorm_min_false": 1.5930391784587872, "denorm_max_false": 20.317410180868695,
        },
        "euclidean_l2": {
            "w": -6.76040230078399, "b": 3.0057651791652638, "normalizer": 1.663921,
            "denorm_min_true": 23.492800781101295, "denorm_max_true": 78.73795056941638,
            "denorm_min_false": 2.287349921316484, "denorm_max_false": 21.754795621979017,
        },
        "angular": {
            "w": -6.487840122876141, "b": 0.9536496647058516, "normalizer": 0.625563,
            "denorm_min_true": 21.72372703119752, "denorm_max_true": 52.1215977454314,
            "denorm_min_false": 4.290546073131373, "denorm_max_false": 20.734638325222512,
        },
    },
    "ArcFace": {
        "cosine": {
            "w": -6.586150423868342, "b": 2.2617127737265186, "normalizer": 1.22267,
            "denorm_min_true": 28.687745855666044, "denorm_max_true": 82.32544721731948,
            "denorm_min_false": 1.306796127659645, "denorm_max_false": 17.210359124614925,
        },
        "euclidean": {
            "w": -5.370594347027345, "b": 0.6896763568574544, "normalizer": 10.401334,
            "denorm_min_true": 19.048164749978937, "denorm_max_true": 43.042326442916284,
            "denorm_min_false": 0.9185346995033978, "denorm_max_false": 18.682892152590245,
        },
        "euclidean_l2": {
            "w": -6.541948874098929, "b": 3.2628963901283585, "normalizer": 1.563758,
            "denorm_min_true": 21.800168694491585, "denorm_max_true": 74.93505228104696,
            "denorm_min_false": 3.6296845343803894, "denorm_max_false": 15.091078907730523,
        },
        "angular": {
            "w": -5.63344888288512, "b": 0.5682159222314143, "normalizer": 0.571477,
            "denorm_min_true": 18.409621072962818, "denorm_max_true": 40.81365081792457,
            "denorm_min_false": 6.59169002231532, "denorm_max_false": 15.13985487535995,
        },
    },
    "GhostFaceNet": {
        "cosine": {
            "w": -6.595823624282929, "b": 2.4180964556128584, "normalizer": 1.155661,
            "denorm_min_true": 22.700531204915876, "denorm_max_true": 84.65757505749636,
            "denorm_min_false": 1.5101757980158446, "denorm_max_false": 15.08427020899693,
        },
        "euclidean": {
            "w": -6.506709483088198, "b": 2.935230928728856, "normalizer": 52.150135,
            "denorm_min_true": 24.63718600288871, "denorm_max_true": 73.09358661728027,
            "denorm_min_false": 2.7345457334612155, "denorm_max_false": 16.513245368123492,
        },
        "euclidean_l2": {
            "w": -6.572852118241916, "b": 3.3068829731570824, "normalizer": 1.520303,
            "denorm_min_true": 20.08886780040665, "denorm_max_true": 75.95533899593255,
            "denorm_min_false": 3.675727926946401, "denorm_max_false": 17.84278657570624,
        },
        "angular": {
            "w": -5.588606771251277, "b": 0.48845693581021543, "normalizer": 0.549751,
            "denorm_min_true": 16.49081504576138, "denorm_max_true": 39.92978715270581,
            "denorm_min_false": 7.018276839135204, "denorm_max_false": 16.143233933992967,
        },
    },
    "Dlib": {
        "cosine": {
            "w": -3.7618087798972293, "b": -0.6908814404797111, "normalizer": 0.200732,
            "denorm_min_true": 27.84268789569509, "denorm_max_true": 32.289077089161594,
            "denorm_min_false": 19.061842082779275, "denorm_max_false": 27.803329512485526,
        },
        "euclidean": {
            "w": -7.494007964438609, "b": 3.9696154227506937, "normalizer": 0.909856,
            "denorm_min_true": 37.63548146988899, "denorm_max_true": 89.6022157357575,
            "denorm_min_false": 5.474065355413035, "denorm_max_false": 36.791885490113046,
        },
        "euclidean_l2": {
            "w": -7.104640497107913, "b": 2.3288632189212457, "normalizer": 0.633612,
            "denorm_min_true": 37.84998375132765, "denorm_max_true": 76.39948218795206,
            "denorm_min_false": 10.222692344960938, "denorm_max_false": 36.56103592414769,
        },
        "angular": {
            "w": -3.2116944601651727, "b": -0.5970349913114966, "normalizer": 0.205221,
            "denorm_min_true": 27.2527288169969, "denorm_max_true": 31.79313619700238,
            "denorm_min_false": 22.163871613552466, "denorm_max_false": 27.18852931051015,
        },
    },
    "SFace": {
        "cosine": {
            "w": -6.531673506288863, "b": 2.2217245506456895, "normalizer": 1.147363,
            "denorm_min_true": 26.26225160110723, "denorm_max_true": 81.04135659361265,
            "denorm_min_false": 1.3256149092319998, "denorm_max_false": 23.62218403514688,
        },
        "euclidean": {
            "w": -5.922412546512467, "b": 2.2306552793788903, "normalizer": 18.826448,
            "denorm_min_true": 24.24534043569188, "denorm_max_true": 53.59440633088357,
            "denorm_min_false": 2.4321858952665205, "denorm_max_false": 24.000007447174763,
        },
        "euclidean_l2": {
            "w": -6.561644724339029, "b": 3.215600266169891, "normalizer": 1.514835,
            "denorm_min_true": 22.25500614635702, "denorm_max_true": 72.39437183443313,
            "denorm_min_false": 3.4024932531839815, "denorm_max_false": 19.531386697831906,
        },
        "angular": {
            "w": -5.575609473928204, "b": 0.421773496308517, "normalizer": 0.547079,
            "denorm_min_true": 17.074673595288292, "denorm_max_true": 37.48563531943993,
            "denorm_min_false": 6.732498767352633, "denorm_max_false": 16.40044990637247,
        },
    },
    "OpenFace": {
        "cosine": {
            "w": -2.932562678842587, "b": -2.0582304636838518, "normalizer": 0.884469,
            "denorm_min_true": 8.832401641007316, "denorm_max_true": 10.546657497687274,
            "denorm_min_false": 0.9452381276992784, "denorm_max_false": 8.535900401000742,
        },
        "euclidean": {
            "w": -5.829345103053105, "b": 1.4390680732209533, "normalizer": 1.330015,
            "denorm_min_true": 27.506182086242408, "denorm_max_true": 60.28549643159932,
            "denorm_min_false": 1.2245483461697035, "denorm_max_false": 27.058382251505012,
        },
        "euclidean_l2": {
            "w": -5.82934526003372, "b": 1.4390681633867946, "normalizer": 1.330015,
            "denorm_min_true": 27.506182591043363, "denorm_max_true": 60.28549793162577,
            "denorm_min_false": 1.224548265353685, "denorm_max_false": 27.058382739158215,
        },
        "angular": {
            "w": -0.5288927551138177, "b": -4.450627600247528, "normalizer": 0.463143,
            "denorm_min_true": 1.0914425266009675, "denorm_max_true": 1.109656206367124,
            "denorm_min_false": 0.9052858972210456, "denorm_max_false": 1.0887229955132125,
        },
    },
    "DeepID": {
        "cosine": {
            "w": -1.1109389867203003, "b": -1.644356005882629, "normalizer": 0.142463,
            "denorm_min_true": 15.966222060549578, "denorm_max_true": 16.114369377586183,
            "denorm_min_false": 14.153198282635255, "denorm_max_false": 15.96057368926546,
        },
        "euclidean": {
            "w": -4.267900227772648, "b": -0.11777629548659044, "normalizer": 124.194689,
            "denorm_min_true": 16.08201206739819, "denorm_max_true": 27.2342405984107,
            "denorm_min_false": 1.230125408063358, "denorm_max_false": 15.90739039527823,
        },
        "euclidean_l2": {
            "w": -3.6681410379067394, "b": -0.9230555193862335, "normalizer": 0.533784,
            "denorm_min_true": 17.57160935306287, "denorm_max_true": 21.681829939622233,
            "denorm_min_false": 5.309829288484883, "denorm_max_false": 17.548244679217202,
        },
        "angular": {
            "w": -0.2707576106983799, "b": -3.87004749575164, "normalizer": 0.171993,
            "denorm_min_true": 2.0220784432439474, "denorm_max_true": 2.02619851743467,
            "denorm_min_false": 1.951974654804089, "denorm_max_false": 2.021498115793411,
        },
    },
    "DeepFace": {
        "cosine": {
            "w": -5.415666808301125, "b": 1.4142777745857174, "normalizer": 0.379428,
            "denorm_min_true": 54.25111593547536, "denorm_max_true": 74.38935817923884,
            "denorm_min_false": 34.51159270342188, "denorm_max_false": 54.16884369236297,
        },
        "euclidean": {
            "w": -7.001068623335827, "b": 5.229677082777916, "normalizer": 85.997482,
            "denorm_min_true": 50.79114821321717, "denorm_max_true": 90.45531547409938,
            "denorm_min_false": 14.53693626301508, "denorm_max_false": 50.4218117539695,
        },
        "euclidean_l2": {
            "w": -6.520866920809606, "b": 3.750706572243227, "normalizer": 0.871123,
            "denorm_min_true": 39.6419822387709, "denorm_max_true": 80.42595166943502,
            "denorm_min_false": 12.677597535252195, "denorm_max_false": 39.578029519563,
        },
        "angular": {
            "w": -0.20178503977417342, "b": -4.960267621006636, "normalizer": 0.2869,
            "denorm_min_true": 0.6801854995078236, "denorm_max_true": 0.6803996880922583,
            "denorm_min_false": 0.6573199053945571, "denorm_max_false": 0.6759509854967268,
        },
    },
}

# Extra spellings that do not reduce to a canonical name by lowercasing and dropping "-_ ".
_EXTRA_ALIASES: dict[str, str] = {
    "deepfacefb": "DeepFace",  # the recognizer plugin module is named deepface_fb
    "buffalo": "Buffalo_L",
    "facenet128": "Facenet",
}


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


_MODEL_KEYS: dict[str, str] = {_squash(name): name for name in THRESHOLDS} | _EXTRA_ALIASES


def canonical_model_name(model: str) -> str | None:
    """deepface's spelling of ``model`` (``"vgg_face"`` -> ``"VGG-Face"``), or None if unknown."""
    if not isinstance(model, str):
        return None
    return _MODEL_KEYS.get(_squash(model))


def _metric_key(metric: str) -> str:
    return metric.strip().lower().replace("-", "_") if isinstance(metric, str) else ""


def thresholds_for(model: str) -> dict[str, float]:
    """All pre-tuned ``{metric: threshold}`` of one model (a copy); unknown model -> ConfigError."""
    name = canonical_model_name(model)
    if name is None:
        raise ConfigError(
            f"no pre-tuned thresholds for the model {model!r}; models with a table entry: "
            f"{', '.join(THRESHOLDS)}. Pass a threshold explicitly for other models."
        )
    return {metric: float(value) for metric, value in THRESHOLDS[name].items()}


def threshold_for(model: str, metric: str) -> float:
    """deepface's pre-tuned threshold for ``model`` and ``metric``.

    ``model`` is matched case-insensitively (``"VGG-Face"``, ``"vggface"``, ``"Facenet512"``);
    ``metric`` is one of :data:`METRICS`.  Anything unknown raises :class:`ConfigError` naming
    the valid choices.
    """
    table = thresholds_for(model)
    key = _metric_key(metric)
    if key not in table:
        raise ConfigError(
            f"no pre-tuned threshold for the metric {metric!r} of {canonical_model_name(model)}; "
            f"metrics with a threshold: {', '.join(table)}. Pass a threshold explicitly for other metrics."
        )
    return table[key]


def _sigmoid(z: float) -> float:
    # Two branches so that exp() never overflows.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def confidence(distance: float, model: str, metric: str, verified: bool) -> float:
    """deepface's confidence (0-100, 2 decimals) that a pair at ``distance`` is the same person.

    ``verified`` is the decision already taken (deepface takes it with the pre-tuned threshold).
    Steps (fact sheet §6.2):

    1. ``distance <= 0``: 100 if verified else 0.
    2. No parameters for the model or metric (e.g. Buffalo_L, third-party models): 51 if
       verified else 49.
    3. A ``normalizer`` above 1 divides the distance (smaller normalizers are ignored).
    4. ``c = 100 * sigmoid(w * d + b)``.
    5. ``c`` is mapped linearly from ``[denorm_min_true, denorm_max_true]`` onto
       ``[max(51, denorm_min_true), 100]`` when verified, or from ``[denorm_min_false,
       denorm_max_false]`` onto ``[0, min(49, int(denorm_max_false))]`` otherwise.
    6. Clamped to at least 51 (verified) / at most 49 (not verified), then to [0, 100], and
       rounded to 2 decimals.
    """
    d = float(distance)
    if math.isnan(d):
        raise FacepipeError("confidence() got a NaN distance; check the embeddings for NaN values")
    if d <= 0:
        return 100.0 if verified else 0.0
    name = canonical_model_name(model)
    params = CONFIDENCE_PARAMS.get(name, {}).get(_metric_key(metric)) if name else None
    if params is None:
        return 51.0 if verified else 49.0

    if params["normalizer"] > 1:
        d = d / params["normalizer"]
    c = 100.0 * _sigmoid(params["w"] * d + params["b"])

    if verified:
        src_lo, src_hi = params["denorm_min_true"], params["denorm_max_true"]
        dst_lo, dst_hi = max(51.0, src_lo), 100.0
    else:
        src_lo, src_hi = params["denorm_min_false"], params["denorm_max_false"]
        dst_lo, dst_hi = 0.0, float(min(49, int(src_hi)))
    span = src_hi - src_lo
    # A degenerate source range (not in deepface's table) maps everything to the top of the target.
    c = dst_lo + (c - src_lo) * (dst_hi - dst_lo) / span if span > 0 else dst_hi

    c = max(c, 51.0) if verified else min(c, 49.0)
    c = min(max(c, 0.0), 100.0)
    return round(c, 2)


__all__ = [
    "CONFIDENCE_PARAMS",
    "METRICS",
    "SOURCE",
    "THRESHOLDS",
    "canonical_model_name",
    "confidence",
    "threshold_for",
    "thresholds_for",
]

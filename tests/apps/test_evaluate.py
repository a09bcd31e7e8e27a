"""`facepipe evaluate`: the ROC math on hand-checkable scores, bad pair files, and a real run."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facepipe.apps.evaluate import format_table, load_pairs
from facepipe.apps.roc import accuracy_at, equal_error_rate, roc_curve, summarize
from facepipe.errors import ConfigError, ExtraNotInstalledError, ImageNotFoundError
from tests.helpers.extras import need


# ------------------------------------------------------------------------------------ math
def test_perfect_separation() -> None:
    roc = summarize([0.1, 0.2, 0.7, 0.8, 0.9], [True, True, False, False, False])
    assert roc.auc == 1.0 and roc.eer == 0.0
    assert roc.best_accuracy == 1.0
    assert 0.2 < roc.best_threshold < 0.7  # half-way between the classes: 0.45
    assert roc.best_threshold == pytest.approx(0.45)
    assert [t.tar for t in roc.tar_at_far] == [1.0, 1.0]


def test_curve_points_by_hand() -> None:
    # same: 0.1, 0.4   different: 0.2, 0.3, 0.5
    far, tar, thresholds = roc_curve([0.1, 0.4, 0.2, 0.3, 0.5], [True, True, False, False, False])
    assert thresholds[0] == -np.inf and thresholds[-1] == np.inf
    assert far.tolist() == pytest.approx([0, 0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert tar.tolist() == pytest.approx([0, 0.5, 0.5, 0.5, 1, 1, 1])
    roc = summarize([0.1, 0.4, 0.2, 0.3, 0.5], [True, True, False, False, False])
    # Mann-Whitney: of the 6 (same, different) pairs, the same one is closer in 0.1<{.2,.3,.5}, 0.4<.5
    assert roc.auc == pytest.approx(4 / 6)
    # FAR - FRR goes from -1/6 at (1/3, .5) to +1/6 at (2/3, .5): they cross half-way, at 0.5
    assert roc.eer == pytest.approx(0.5)
    # best: accept <= 0.1 (4/5 right) beats accept <= 0.4 (3/5); threshold half-way to 0.2
    assert roc.best_accuracy == pytest.approx(0.8)
    assert roc.best_threshold == pytest.approx(0.15)


def test_ties_count_half() -> None:
    # every distance equal: the curve is the diagonal, AUC 0.5, EER 0.5
    roc = summarize([0.3] * 6, [True, True, True, False, False, False])
    assert roc.far.tolist() == [0, 1, 1] and roc.tar.tolist() == [0, 1, 1]
    assert roc.auc == pytest.approx(0.5)
    assert roc.eer == pytest.approx(0.5)
    # one tie across the classes (0.2 same vs 0.2 different) costs half a pair ordering
    roc = summarize([0.1, 0.2, 0.2, 0.9], [True, True, False, False])
    assert roc.auc == pytest.approx((3 + 0.5) / 4)


def test_tar_at_far_uses_real_operating_points_and_flags_resolution() -> None:
    # 100 different pairs at 0.50, 0.51, ..., 1.49; 10 same pairs at 0.505, 0.515, ..., 0.595
    different = 0.5 + np.arange(100) / 100
    same = 0.505 + np.arange(10) / 100
    d = np.concatenate([same, different])
    labels = np.array([True] * 10 + [False] * 100)
    roc = summarize(d, labels, targets=(0.05, 0.01, 0.001))
    at5, at1, at01 = roc.tar_at_far
    # FAR <= 0.05 allows 5 impostors (0.50 .. 0.54); below the 6th (0.55) lie 5 same pairs (.505 .. .545)
    assert (at5.tar, at5.far, at5.limited) == (pytest.approx(0.5), pytest.approx(0.05), False)
    # FAR <= 0.01: one impostor (0.50) -> the same pair 0.505 only
    assert (at1.tar, at1.far, at1.limited) == (pytest.approx(0.1), pytest.approx(0.01), False)
    # 1e-3 is finer than 1/100: only FAR 0 qualifies, and nothing same lies below 0.50
    assert (at01.tar, at01.far, at01.limited) == (0.0, 0.0, True)
    assert roc.far_resolution == pytest.approx(0.01)


def test_no_face_pairs_are_never_accepted() -> None:
    d = np.array([0.1, np.inf, 0.8, np.inf])
    same = np.array([True, True, False, False])
    roc = summarize(d, same)
    # at any finite threshold the infinite same pair is rejected: TAR tops out at 0.5 before (1, 1)
    assert roc.point_at(10.0) == (0.5, 0.5)
    assert accuracy_at(d, same, 10.0) == 0.5
    # AUC: 0.1 beats both different pairs, inf ties with inf (half) and loses to 0.8 -> (2 + .5) / 4
    assert roc.auc == pytest.approx(2.5 / 4)
    assert np.isfinite(roc.best_threshold)


def test_eer_on_a_symmetric_overlap() -> None:
    far = np.array([0.0, 0.2, 0.4, 1.0])
    tar = np.array([0.0, 0.4, 0.8, 1.0])
    # FAR - FRR: -1, -0.4, +0.2, +1 -> crossing two thirds of the way from (0.2, .4) to (0.4, .8)
    assert equal_error_rate(far, tar) == pytest.approx(0.2 + (0.4 / 0.6) * 0.2)


def test_summaries_need_both_labels() -> None:
    with pytest.raises(ConfigError, match="both same-person and different-person"):
        summarize([0.1, 0.2], [True, True])


# ------------------------------------------------------------------------------------ pair files
def _write(folder: Path, text: str) -> Path:
    path = folder / "pairs.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_pair_files(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="missing column"):
        load_pairs(_write(tmp_path, "left,right,Decision\na.jpg,b.jpg,Yes\n"))
    with pytest.raises(ConfigError, match="neither same"):
        load_pairs(_write(tmp_path, "file_x,file_y,Decision\na.jpg,b.jpg,perhaps\n"))
    with pytest.raises(ConfigError, match="needs a value"):
        load_pairs(_write(tmp_path, "file_x,file_y,Decision\na.jpg,,Yes\n"))
    with pytest.raises(ConfigError, match="holds no pairs"):
        load_pairs(_write(tmp_path, "file_x,file_y,Decision\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_pairs(tmp_path / "absent.csv")
    with pytest.raises(ConfigError, match="1 same, 0 different"):
        load_pairs(_write(tmp_path, "file_x,file_y,Decision\na.jpg,b.jpg,Yes\n"))
    with pytest.raises(ImageNotFoundError, match=r"2 photo\(s\) not found: .*c\.jpg.*d\.jpg"):
        load_pairs(_write(tmp_path, "file_x,file_y,Decision\na.jpg,c.jpg,Yes\nd.jpg,b.jpg,No\n"))
    # paths are relative to the CSV's folder; column names match whatever their case
    pairs = load_pairs(_write(tmp_path, "File_X,file_y,decision\na.jpg,b.jpg,Yes\nb.jpg,a.jpg,No\n"))
    assert pairs == [(tmp_path / "a.jpg", tmp_path / "b.jpg", True), (tmp_path / "b.jpg", tmp_path / "a.jpg", False)]


def test_plot_without_matplotlib_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from facepipe.apps import roc_plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ExtraNotInstalledError, match=r"pip install 'facepipe\[plot\]'"):
        roc_plot.require_matplotlib()


def test_cli_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "left,right\na.jpg,b.jpg\n")
    out = subprocess.run([sys.executable, "-m", "facepipe.apps.cli", "evaluate", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("facepipe: error:") and "missing column" in out.stderr
    assert "Traceback" not in out.stderr


# ------------------------------------------------------------------------------------ hermetic run
def test_cli_on_synthetic_photos_with_a_faceless_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole command on the numpy-only test plugins: runs everywhere, no photos or weights."""
    from facepipe.apps.cli import main
    from facepipe.testing import hermetic_registry
    from tests.helpers.synthetic_faces import photo, write_png

    for person in (1, 2, 3):
        for variant in (0, 1):
            write_png(tmp_path / f"p{person}v{variant}.png", photo(person, variant))
    write_png(tmp_path / "blank.png", np.zeros((64, 64, 3), dtype=np.uint8))
    rows = ["p1v0.png,p1v1.png,Yes", "p2v0.png,p2v1.png,Yes", "p3v0.png,p3v1.png,Yes", "blank.png,p2v0.png,Yes",
            "p1v0.png,p2v0.png,No", "p1v0.png,p3v1.png,No", "p2v1.png,p3v0.png,No", "blank.png,p1v0.png,No"]
    csv_path = _write(tmp_path, "\n".join(["file_x,file_y,Decision", *rows]) + "\n")
    config = tmp_path / "base.json"
    config.write_text(json.dumps({"align": False}))  # rotating needs OpenCV; the blobs' eyes are level

    rc = main(["evaluate", str(csv_path), "--config", str(config), "--detectors", "blob", "--recognizers", "grid",
               "--metrics", "cosine", "euclidean", "--json", "-q"], registry=hermetic_registry())
    assert rc == 0
    cosine, euclidean = json.loads(capsys.readouterr().out)
    assert (cosine["detector"], cosine["recognizer"], cosine["metric"]) == ("blob", "grid", "cosine")
    assert cosine["photos"] == 7 and cosine["no_face_pairs"] == 2
    # the faceless same-person pair is never accepted; the faceless different one is a tie with it:
    # AUC = (3 close pairs beat all 4 different ones + half a tie) / 16
    assert cosine["auc"] == pytest.approx(12.5 / 16)
    assert cosine["default_threshold"] == 0.3  # GridRecognizer's declared cosine threshold
    assert cosine["default_accuracy"] == pytest.approx(7 / 8)
    assert cosine["best_accuracy"] == pytest.approx(7 / 8)
    assert euclidean["default_threshold"] == 60.0 and euclidean["auc"] == pytest.approx(12.5 / 16)
    assert [t["limited"] for t in cosine["tar_at_far"]] == [True, True]  # 4 different pairs: steps of 1/4


# ------------------------------------------------------------------------------------ a real run
def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_evaluate_master_subset_with_dlib(dataset: Path, tmp_path: Path) -> None:
    need("dlib")
    need("matplotlib", "plot")
    from facepipe.apps.cli import main
    from facepipe.apps.roc_plot import DPI, FIGURE_SIZE

    # 6 same + 10 different pairs of master.csv, written with absolute paths
    lines = (dataset / "master.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [r for r in lines[1:] if r.strip()]
    chosen = [r for r in rows if r.endswith("Yes")][:6] + [r for r in rows if r.endswith("No")][:10]
    absolute = [",".join([str(dataset / x), str(dataset / y), label])
                for x, y, label in (r.split(",") for r in chosen)]
    csv_path = _write(tmp_path, "\n".join([header, *absolute]) + "\n")
    png = tmp_path / "out" / "roc.png"

    import contextlib
    import io

    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        rc = main(["evaluate", str(csv_path), "--detectors", "dlib", "--recognizers", "Dlib",
                   "--metrics", "cosine,euclidean", "--plot", str(png), "--quiet"])
    assert rc == 0
    text = table.getvalue()
    body = [line.split() for line in text.splitlines()[2:4]]
    assert [row[:3] for row in body] == [["dlib", "Dlib", "cosine"], ["dlib", "Dlib", "euclidean"]]
    assert "16 pairs (6 same person, 10 different)" in text
    assert "TAR at FAR 0" in text  # 1e-2 and 1e-3 are finer than 1/10 here
    # the declared thresholds (deepface's Dlib values) and real accuracy on these pairs
    cosine, euclidean = body
    assert cosine[3] == "0.0700" and euclidean[3] == "0.6000"
    assert float(cosine[4]) >= 0.85 and float(cosine[7]) >= 0.9  # accuracy, AUC
    assert _png_size(png) == (int(FIGURE_SIZE[0] * DPI), int(FIGURE_SIZE[1] * DPI))

    # the same through the library: the JSON carries the curve, ending at (1, 1)
    from facepipe.apps.evaluate import evaluate, to_json

    results = evaluate(load_pairs(csv_path), detectors=["dlib"], recognizers=["Dlib"], metrics=["cosine"],
                       progress=False)
    data = json.loads(to_json(results))[0]
    assert data["pairs"] == 16 and data["same_pairs"] == 6 and data["no_face_pairs"] == 0
    assert data["curve"]["far"][-1] == 1.0 and data["curve"]["tar"][-1] == 1.0
    assert data["auc"] == pytest.approx(float(cosine[7]), abs=5e-4)
    assert format_table(results).splitlines()[0].split()[:3] == ["detector", "recognizer", "metric"]

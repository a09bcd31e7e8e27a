"""``facepipe gallery add|search|identify|delete|stats`` in-process on the hermetic plugins, into an
embedded store in tmp_path: each action's output and exit status, and typed one-line errors."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from facepipe.apps.cli import main
from facepipe.registry import ENTRY_POINT_GROUP
from facepipe.testing import hermetic_registry
from tests.helpers.synthetic_faces import group_photo, photo, write_png

HERMETIC = ["--detector", "blob", "--recognizer", "grid", "--metric", "cosine", "--no-align"]


@pytest.fixture(scope="module")
def registry() -> Any:
    """The hermetic plugins plus the built-in embedded store (the only store the CLI needs here)."""
    registry = hermetic_registry()
    (ep,) = [e for e in metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == "stores.embedded"]
    registry.register_module(ep.load(), distribution="facepipe", name=ep.name)
    return registry


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, str]:
    return {name: str(write_png(tmp_path / f"{name}.png", image)) for name, image in {
        "alice1": photo(1, 0), "alice2": photo(1, 2), "bob": photo(2, 0), "group": group_photo(1, 2),
    }.items()}


@pytest.fixture
def gallery(registry: Any, tmp_path: Path, photos: dict[str, str], capsys: Any) -> "Cli":
    cli = Cli(registry, capsys, str(tmp_path / "faces"))
    assert cli("add", "alice", photos["alice1"]) == (0, "1 new face(s) of alice (1 in the gallery)\n", "")
    assert cli("add", "bob", photos["bob"]) == (0, "1 new face(s) of bob (2 in the gallery)\n", "")
    return cli


class Cli:
    """``facepipe gallery ACTION ... --store STORE`` with the hermetic plugins: (status, stdout, stderr)."""

    def __init__(self, registry: Any, capsys: Any, store: str) -> None:
        self.registry, self.capsys, self.store = registry, capsys, store

    def __call__(self, action: str, *args: str, store: str | None = None) -> tuple[int, str, str]:
        code = main(["gallery", action, *args, "--store", store or self.store, *HERMETIC], registry=self.registry)
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def json(self, action: str, *args: str) -> Any:
        code, out, err = self(action, *args, "--json")
        assert (code, err) == (0, ""), err
        return json.loads(out)


def _assert_typed_error(result: tuple[int, str, str], *fragments: str) -> None:
    code, out, err = result
    assert code == 2 and out == ""
    assert err.startswith("facepipe: error: ") and err.count("\n") == 1, err  # one line, no traceback
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_add_is_idempotent_and_counts_new_faces(gallery: Cli, photos: dict[str, str]) -> None:
    assert gallery("add", "alice", photos["alice1"]) == (0, "0 new face(s) of alice (2 in the gallery)\n", "")
    assert gallery.json("add", "alice", photos["alice2"], photos["alice1"]) == {"inserted": 1, "identity": "alice"}
    assert gallery.json("stats")["faces"] == 3


def test_stats_counts_faces_and_identities(gallery: Cli) -> None:
    assert gallery("stats") == (0, f"2 face(s) of 2 identities in {gallery.store}\n", "")
    assert gallery.json("stats") == {"store": gallery.store, "faces": 2, "identities": 2}


def test_search_lists_each_face_s_matches(gallery: Cli, photos: dict[str, str]) -> None:
    code, out, err = gallery("search", photos["group"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["face 0", "face 1"]
    assert lines[0].split(": ")[1].startswith("alice (") and lines[1].split(": ")[1].startswith("bob (")
    assert [line.count(", id ") for line in lines] == [1, 1]  # within the threshold only: one match each

    (rows,) = gallery.json("search", photos["alice2"])
    assert [r["img_name"] for r in rows] == ["alice"]
    assert rows[0]["distance"] <= rows[0]["threshold"]
    row = rows[0]
    assert (row["model_name"], row["detector_backend"], row["distance_metric"]) == ("grid", "blob", "cosine")

    (rows,) = gallery.json("search", photos["alice2"], "--all", "-k", "5")  # look-alikes too, nearest first
    assert [r["img_name"] for r in rows] == ["alice", "bob"]
    assert rows[0]["distance"] < rows[1]["distance"] and rows[1]["distance"] > rows[1]["threshold"]
    (rows,) = gallery.json("search", photos["alice2"], "--all", "-k", "1")
    assert [r["img_name"] for r in rows] == ["alice"]


def test_identify_says_same_or_different(gallery: Cli, photos: dict[str, str]) -> None:
    (rows,) = gallery.json("search", photos["alice2"], "--all")
    ids = {r["img_name"]: r["id"] for r in rows}
    code, out, err = gallery("identify", photos["alice2"], ids["alice"])
    assert (code, err) == (0, "") and out.startswith("same person as alice: distance ")
    code, out, err = gallery("identify", photos["alice2"], ids["bob"])
    assert (code, err) == (0, "") and out.startswith("different people as bob: distance ")
    result = gallery.json("identify", photos["alice2"], ids["alice"])
    assert result["verified"] is True and result["id"] == ids["alice"] and result["img_name"] == "alice"
    assert result["distance"] == pytest.approx(rows[0]["distance"], abs=1e-6)


def test_identify_unknown_id_is_a_typed_error(gallery: Cli, photos: dict[str, str]) -> None:
    _assert_typed_error(gallery("identify", photos["alice2"], "no-such-face"), "no-such-face")


def test_delete_by_id(gallery: Cli, photos: dict[str, str]) -> None:
    (rows,) = gallery.json("search", photos["alice2"], "--all")
    bob = next(r["id"] for r in rows if r["img_name"] == "bob")
    assert gallery("delete", bob, "unknown-id") == (0, "1 face(s) removed\n", "")
    assert gallery.json("delete", bob) == {"deleted": 0}
    assert gallery.json("stats") == {"store": gallery.store, "faces": 1, "identities": 1}
    (rows,) = gallery.json("search", photos["bob"], "--all")
    assert [r["img_name"] for r in rows] == ["alice"]


def test_delete_of_an_unknown_identity_removes_nothing(gallery: Cli) -> None:
    assert gallery("delete", "--identity", "carol") == (0, "0 face(s) removed\n", "")
    assert gallery.json("stats")["faces"] == 2


def test_delete_by_identity(gallery: Cli) -> None:
    assert gallery("delete", "--identity", "bob") == (0, "1 face(s) removed\n", "")
    assert gallery.json("stats")["faces"] == 1
    assert gallery("delete", "--identity", "bob") == (0, "0 face(s) removed\n", "")


def test_delete_without_ids_or_identity_is_a_typed_error(gallery: Cli) -> None:
    _assert_typed_error(gallery("delete"), "--identity")
    assert gallery.json("stats")["faces"] == 2


@pytest.mark.parametrize(("store", "fragment"), [
    ("nosuch://host/x", "nosuch://"),
    ("postgresql://u@127.0.0.1:1/db", "postgresql://"),  # no pgvector store in this registry
    ("   ", "folder path or a store URL"),
])
def test_bad_store_is_a_one_line_typed_error(registry: Any, capsys: Any, tmp_path: Path, store: str,
                                             fragment: str) -> None:
    cli = Cli(registry, capsys, store)
    for action in (["stats"], ["delete", "x"]):
        _assert_typed_error(cli(*action), fragment)
    assert not any(tmp_path.iterdir())  # nothing was created

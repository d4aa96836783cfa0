"""pyproject.toml: the licence as an SPDX expression (PEP 639), with a setuptools that reads it, so that
installing prints no deprecation warning about a ``license = {text = ...}`` table."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_licence_is_an_spdx_string_and_the_build_needs_a_setuptools_that_reads_it() -> None:
    config = tomllib.loads(PYPROJECT.read_text())
    assert config["project"]["license"] == "Apache-2.0"
    assert not any(c.startswith("License ::") for c in config["project"].get("classifiers", []))  # PEP 639
    (setuptools,) = [r for r in config["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert minimum is not None and int(minimum.group(1)) >= 77, setuptools  # 77: the first with PEP 639

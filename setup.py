"""LORE: install with `make setup` (creates .venv with the pinned stack) or `pip install -e .`."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements() -> list[str]:
    lines = (HERE / "requirements.txt").read_text().splitlines()
    reqs = [line.split("#", 1)[0].strip() for line in lines]
    return [r for r in reqs if r and r.split("[")[0].split("=")[0].split(">")[0] not in TEST_ONLY]


TEST_ONLY = {"pytest", "pytest-timeout", "hypothesis"}

setup(
    name="lore",
    version="0.1.0",
    description="LORE: generative-model search relevance (L1-L4) served by query frequency",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["lore_ml", "lore_ml.*", "jobs", "jobs.*", "sql", "online", "online.*"]),
    package_data={"lore_ml": ["data/*.yaml", "rules/*.yaml"], "sql": ["*.sql"], "online": ["gunicorn.conf.py"]},
    include_package_data=True,
    install_requires=requirements(),
    extras_require={"test": sorted(TEST_ONLY)},
    entry_points={"console_scripts": ["lore = lore_ml.cli:main"]},
)

"""The README's first commands are the ones CI runs."""
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _commands(text: str) -> list[str]:
    return [line.split("#")[0].strip() for line in text.splitlines() if line.startswith((".venv/", "python3 -m venv"))]


def test_ci_runs_the_readme_install_and_test_commands():
    readme = _commands(ROOT.joinpath("README.md").read_text().split("```")[1])
    ci = _commands(ROOT.joinpath(".ci", "run").read_text())
    assert readme[:2] == ci[:2]
    assert readme[2].startswith(".venv/bin/polymodal demo")

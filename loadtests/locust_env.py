"""Create Locust's own virtualenv from the pin in pyproject's `load` extra.

    python -m loadtests.locust_env [DIR]      (default .venv-load)

Locust lives apart from the project env: importing it monkey-patches the
process with gevent, which Django, psycopg and the runner must not get.
The pin is read from pyproject.toml so tox, CI and a laptop agree.
"""

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pinned() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["optional-dependencies"]["load"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = Path(argv[0]) if argv else ROOT / ".venv-load"
    if not (target / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True).create(target)
    pip = [
        str(target / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, *pinned()], check=True)
    print(f"locust: {target / 'bin' / 'locust'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

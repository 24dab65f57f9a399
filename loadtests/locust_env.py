"""Create Locust's own virtualenv from requirements/load.txt.

    python -m loadtests.locust_env [DIR]      (default .venv-load)

Locust lives apart from the project env: importing it monkey-patches the
process with gevent, which Django, psycopg and the runner must not get.
The lock (scripts/lock: pyproject's `load` extra, every transitive package
pinned with its hashes) is what tox, CI and a laptop install.
"""

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "load.txt"


def pinned() -> list[str]:
    """The `load` extra's pins (the lock's input; tests check the lock holds them)."""
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
    subprocess.run([*pip, "--require-hashes", "-r", str(LOCK)], check=True)
    print(f"locust: {target / 'bin' / 'locust'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

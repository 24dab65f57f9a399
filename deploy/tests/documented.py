"""The environment variables the service reads: docs/configuration.md's tables."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Read by gunicorn itself (the image's default command): its bind port and
# worker count.
GUNICORN_VARIABLES = {"PORT", "WEB_CONCURRENCY"}


def documented_variables() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    names = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, re.MULTILINE))
    assert len(names) > 40, "docs/configuration.md's tables not found"
    return names


def example_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))

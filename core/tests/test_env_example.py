""".env.example names every environment variable the settings read."""

import re

from conftest import ROOT

READ = re.compile(r"""(?:env_bool|env_float|environ\.get|environ\[)\(?["']([A-Z][A-Z0-9_]+)["']""")


def test_env_example_lists_every_variable_the_settings_read():
    read = set(READ.findall((ROOT / "core" / "settings.py").read_text()))
    read |= set(READ.findall((ROOT / "core" / "gunicorn_conf.py").read_text()))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert read, "the pattern finds the settings' variables"
    assert read - listed == set(), "add these to .env.example"

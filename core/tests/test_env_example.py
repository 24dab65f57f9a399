"""One configuration reference: docs/configuration.md describes every
environment variable the service reads, .env.example lists the same ones in
the same groups, and neither names one that nothing reads any more."""

import re

from conftest import ROOT

# A read in Python: the settings' helpers (env_bool, env_float, env_list) and
# os.environ with a literal name.
HELPERS = ("env_bool", "env_float", "env_list")
READ = re.compile(
    rf"""(?:{"|".join(HELPERS)}|environ\.get|environ\[)\(?["']([A-Z][A-Z0-9_]+)["']"""
)
PYTHON_SOURCES = ("core/settings.py", "core/gunicorn_conf.py")
# A read in the shell: ${NAME:-default} (scripts/serve's own variables, PORT).
SHELL_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]+):-")
SHELL_SOURCES = ("scripts/serve",)

GROUP_MD = re.compile(r"^### (.+?)\s*$")
VARIABLE_MD = re.compile(r"^\| `([A-Z][A-Z0-9_]+)` \|")
GROUP_EXAMPLE = re.compile(r"^# --- (.+?) -*\s*$")
VARIABLE_EXAMPLE = re.compile(r"^#? ?([A-Z][A-Z0-9_]+)=")


def variables_read() -> set[str]:
    read: set[str] = set()
    for path in PYTHON_SOURCES:
        read |= set(READ.findall((ROOT / path).read_text()))
    for path in SHELL_SOURCES:
        read |= set(SHELL_READ.findall((ROOT / path).read_text()))
    return read


def grouped(path: str, group: re.Pattern, variable: re.Pattern) -> list[tuple[str, str]]:
    """(group, variable) in the file's order."""
    found, current = [], ""
    for line in (ROOT / path).read_text().splitlines():
        if m := group.match(line):
            current = m.group(1)
        elif m := variable.match(line):
            found.append((current, m.group(1)))
    return found


def documented() -> list[tuple[str, str]]:
    return grouped("docs/configuration.md", GROUP_MD, VARIABLE_MD)


def example() -> list[tuple[str, str]]:
    return grouped(".env.example", GROUP_EXAMPLE, VARIABLE_EXAMPLE)


def test_the_patterns_see_every_kind_of_read_in_the_settings():
    read = variables_read()
    # One of each: env_bool, env_float, env_list, environ.get, environ[...], gunicorn, shell.
    assert {"DEBUG", "REDIS_CONNECT_TIMEOUT", "ALLOWED_HOSTS", "SECRET_KEY"} <= read
    assert {"WORKER_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR", "PORT"} <= read
    settings = (ROOT / "core" / "settings.py").read_text()
    # A new helper that reads the environment must be added to HELPERS.
    assert set(re.findall(r"^def (env_\w+)\(", settings, re.MULTILINE)) <= set(HELPERS)
    # os.environ is read with a literal name (the patterns see it) or inside a helper.
    for arg in re.findall(r"os\.environ(?:\.get\(|\[)\s*([^\s,)\]]+)", settings):
        assert arg == "name" or re.fullmatch(r"""["'][A-Z][A-Z0-9_]+["']""", arg), arg


def test_configuration_md_documents_every_variable_the_service_reads():
    names = [name for _, name in documented()]
    assert len(names) == len(set(names)), "a variable documented twice"
    assert variables_read() - set(names) == set(), "add these to docs/configuration.md"
    assert set(names) - variables_read() == set(), (
        "nothing reads these: drop them from docs/configuration.md"
    )


def test_env_example_lists_every_variable_the_settings_read():
    names = [name for _, name in example()]
    assert len(names) == len(set(names)), "a variable listed twice"
    assert variables_read() - set(names) == set(), "add these to .env.example"
    assert set(names) - variables_read() == set(), (
        "nothing reads these: drop them from .env.example"
    )


def test_env_example_follows_the_configuration_reference_group_by_group():
    assert example() == documented(), (
        ".env.example lists docs/configuration.md's variables in its groups and order"
    )

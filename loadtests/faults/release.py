"""A new release for the rolling-deploy scenario: this tree, copied, plus a change.

The copy holds the checkout's files as they are (tracked and untracked, not
ignored: `git ls-files`), in a temporary directory; its processes run from
there (working directory, and first on sys.path: loadtests.stack) with the
same virtualenv. The change is the expand half of an expand/contract
migration (docs/operations.md, "Deploying a new release"):

- a column `signup_user.release`, NOT NULL with a database default ''
  (Django's db_default): the old release's INSERTs, which do not name it,
  still work, and every row it writes gets ''; adding it is a catalogue
  change on PostgreSQL 11+ (no table rewrite);
- the new release's model has the field with a Python default, NEW_RELEASE:
  every user it creates (signup) stores that value;
- its migration depends on the current leaf of signup's migrations.

Each of its processes prints one line RELEASE_MARKER when it loads its
models, so a node's log shows which release it ran.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

from django.db.migrations.loader import MigrationLoader

from loadtests.stack import ROOT

NEW_RELEASE = "next"
COLUMN = "release"
RELEASE_MARKER = "payshift release next: models from"

MODEL_CHANGE = f"""

# --- The rolling-deploy scenario's new release (loadtests/faults/release.py) ---
import sys as _sys  # noqa: E402

User.add_to_class(
    {COLUMN!r},
    models.CharField(max_length=32, blank=True, default={NEW_RELEASE!r}, db_default=""),
)
print({RELEASE_MARKER!r}, __file__, file=_sys.stderr, flush=True)
"""

MIGRATION = """\
# The rolling-deploy scenario's new release (loadtests/faults/release.py): expand.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("signup", {leaf!r})]

    operations = [
        migrations.AddField(
            model_name="user",
            name={column!r},
            field=models.CharField(
                blank=True, db_default="", default={release!r}, max_length=32
            ),
        ),
    ]
"""


def signup_leaf() -> str:
    """The name of signup's last migration (exactly one leaf)."""
    leaves = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes("signup")
    if len(leaves) != 1:
        raise RuntimeError(f"signup has {len(leaves)} migration leaves: {leaves}")
    return leaves[0][1]


def tree_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return [name for name in out.decode().split("\0") if name]


def make_release() -> Path:
    """Copy the tree and apply the change; returns the copy's root."""
    root = Path(tempfile.mkdtemp(prefix="payshift-release-"))
    for name in tree_files():
        source = ROOT / name
        if source.is_file():  # listed but deleted in the work tree: not copied
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    leaf = signup_leaf()
    number = int(leaf.split("_", 1)[0]) + 1
    migration = root / "signup" / "migrations" / f"{number:04d}_user_{COLUMN}.py"
    migration.write_text(MIGRATION.format(leaf=leaf, column=COLUMN, release=NEW_RELEASE))
    models = root / "signup" / "models.py"
    models.write_text(models.read_text() + MODEL_CHANGE)
    return root


def remove_release(root: Path) -> None:
    if root.name.startswith("payshift-release-"):
        shutil.rmtree(root, ignore_errors=True)

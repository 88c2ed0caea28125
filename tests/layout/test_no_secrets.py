"""No password in any committed file: the stack's passwords are made on the machine
(scripts/secrets.sh, into a git-ignored file), the program configuration names a secret rather
than holding one, and the test brokers' passwords are made per run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# In configuration and scripts: a whole line `KEY=value` or `key: value` (a comment may follow)
# where the key says password; in Python: a key or name saying password given a string literal.
# References (${...}, $(...), valueFrom) and empty values are not passwords.
CONFIG_LINE = re.compile(
    r"""(?i)^\s*(export\s+|-\s+)?["']?[\w.-]*(password|passwd)[\w.-]*["']?\s*[:=]\s*
        (?P<value>[^\s#]+)\s*(\#.*)?$""",
    re.VERBOSE,
)
PYTHON_LITERAL = re.compile(
    r"""(?i)(^\s*|[(,{.]\s*)["']?\w*password\w*["']?\s*(:\s*str\s*)?[:=]\s*["'](?P<value>[^"']+)["']"""
)
REFERENCES = re.compile(r"""^["']?(\$|\{|valueFrom|secretKeyRef)""")
SCANNED = re.compile(r"(\.env|\.ya?ml|\.conf|\.sh|\.toml|\.json|\.md|Makefile|Dockerfile|\.py)$")


def committed_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / name for name in listed if SCANNED.search(name) and (REPO / name).is_file()]


def test_no_committed_file_holds_a_password():
    found = []
    for path in committed_files():
        if path.suffix == ".py" and "tests" in path.parts:
            continue  # a test's own throwaway values, e.g. a wrong password it expects refused
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            pattern = PYTHON_LITERAL if path.suffix == ".py" else CONFIG_LINE
            for match in pattern.finditer(line):
                value = match["value"]
                if not REFERENCES.match(value) and value.strip("\"'"):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "passwords in committed files:\n" + "\n".join(found)


def test_the_generated_secrets_file_is_ignored_by_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "compose/secrets.env"], cwd=REPO, check=False
    )
    assert ignored.returncode == 0, "compose/secrets.env would be committed: add it to .gitignore"

"""The shape the project keeps: every setting declared once, each service with the same skeleton
and a README that documents its settings, the shared library free of any service, no module
steering another through the environment, every task with one model of its arguments, and
documentation that never points outside the repository."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from acoustack.config import Settings
from acoustack.names import TASK_ARGUMENTS, Task
from acoustack_scheduler.programs import BUILT_IN

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("storage", "detector", "recorder", "messenger", "scheduler", "dashboard", "hub")
# Each role has the same module name in every service (a role a service lacks, it lacks).
SKELETON = ("__main__.py", "settings.py", "wiring.py")
ROLE_MODULES = {"tasks.py": "Celery tasks", "servicer.py": "gRPC servicers"}


def settings_class(service: str) -> tuple[str, type[Settings]]:
    module = importlib.import_module(f"acoustack_{service}.settings")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Settings)
        and value.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{service}: one settings class, found {classes}"
    return module.PREFIX, classes[0]


def program_leaves() -> dict[str, set[str]]:
    """Every field name of every built-in program's configuration → the sections it is in."""
    found: dict[str, set[str]] = {}
    for program in BUILT_IN.values():
        for section, info in program.config_schema.model_fields.items():
            kind = info.annotation
            assert isinstance(kind, type) and issubclass(kind, BaseModel)
            for name in kind.model_fields:
                found.setdefault(name, set()).add(section)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_setting_repeats_a_field_of_the_program(service):
    _, settings = settings_class(service)
    leaves = program_leaves()
    repeated = {name: sorted(leaves[name]) for name in settings.model_fields if name in leaves}
    assert not repeated, f"{service} settings repeat program fields: {repeated}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_the_same_skeleton_and_a_readme_of_its_settings(service):
    package = REPO / "services" / service / "src" / f"acoustack_{service}"
    for module in SKELETON:
        assert (package / module).is_file(), f"{service}: no {module}"
    for module, role in ROLE_MODULES.items():
        # A module that plays a role carries its name: Celery tasks only in tasks.py, gRPC
        # servicers only in servicer.py.
        marker = "register_task(" if module == "tasks.py" else "Servicer):"
        for path in package.glob("*.py"):
            if path.name != module and marker in path.read_text():
                pytest.fail(f"{service}: {role} in {path.name}, not {module}")
    readme = (REPO / "services" / service / "README.md").read_text()
    prefix, settings = settings_class(service)
    undocumented = [
        settings.env_name(prefix, name)
        for name in settings.model_fields
        if settings.env_name(prefix, name) not in readme
    ]
    assert not undocumented, f"{service}/README.md does not document {undocumented}"
    for heading in ("## Owns", "## Settings"):
        assert heading in readme, f"{service}/README.md has no {heading!r}"


def parse(path: Path) -> ast.Module:
    """ast.parse, tried again on CPython 3.11.7's false "AST constructor recursion depth mismatch":
    its ast module keeps one depth counter per interpreter, so a parse in another thread of the
    test process at the same moment trips it (gh-106905, fixed in 3.11.8). The file is not at fault.
    """
    for attempt in range(3):
        try:
            return ast.parse(path.read_text())
        except SystemError as error:
            if "recursion depth mismatch" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def imports_of(path: Path) -> set[str]:
    tree = parse(path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_shared_library_imports_no_service():
    shared = REPO / "services" / "common" / "src" / "acoustack"
    offending = {
        str(path.relative_to(shared)): sorted(
            m for m in imports_of(path) if m.startswith("acoustack_")
        )
        for path in shared.rglob("*.py")
    }
    offending = {path: modules for path, modules in offending.items() if modules}
    assert not offending, f"the shared library imports services: {offending}"


def environment_writes(path: Path) -> list[int]:
    """Lines that change os.environ (assignment, deletion, update, setdefault, putenv)."""
    lines = []
    for node in ast.walk(parse(path)):
        targets = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if hasattr(node, "targets") else [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "os.environ":
                lines.append(node.lineno)
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called in ("os.putenv", "os.unsetenv") or re.fullmatch(
                r"os\.environ\.(update|setdefault|pop|clear|popitem)", called
            ):
                lines.append(node.lineno)
    return lines


def test_no_module_steers_another_through_the_environment():
    roots = [REPO / "services", REPO / "tools"]
    writes = {
        str(path.relative_to(REPO)): found
        for root in roots
        for path in root.rglob("src/**/*.py")
        if (found := environment_writes(path))
    }
    assert not writes, f"os.environ written at {writes}"


def test_every_task_has_one_model_of_its_arguments():
    assert set(TASK_ARGUMENTS) == set(Task)
    for task, model in TASK_ARGUMENTS.items():
        assert model.task is task
        assert "program_config" in model.model_fields  # every task carries the configuration


MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_documentation_links_stay_inside_the_repository():
    broken = []
    for doc in REPO.glob("**/*.md"):
        if any(part.startswith(".") or part in ("build", "node_modules") for part in doc.parts):
            continue
        for target, _ in MARKDOWN_LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+://|^mailto:", target):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(REPO) or not resolved.exists():
                broken.append(f"{doc.relative_to(REPO)} → {target}")
    assert not broken, f"links outside the repository or to nothing: {broken}"


def test_the_readme_starts_with_the_two_commands_and_stays_short():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```", 2)[1]
    assert "make up" in first_block and "make test" in first_block
    assert len(readme.splitlines()) <= 170, "the README is for a newcomer: details go to docs/"
    assert "| service |" in readme.replace("|  service |", "| service |"), "no table of services"


def test_every_program_field_is_documented():
    documented = (REPO / "docs" / "configuration.md").read_text()
    missing = sorted(
        f"{section}.{name}"
        for name, sections in program_leaves().items()
        for section in sections
        if f"`{section}.{name}`" not in documented
    )
    assert not missing, f"docs/configuration.md does not document {missing}"


# Which task template each service's own task runs through (acoustack.tasks, acoupi's six).
TEMPLATES = {
    "recorder": ["generate_recording_task"],
    "detector": ["generate_detection_task"],
    "storage": ["generate_file_management_task"],
    "messenger": [
        "generate_send_messages_task",
        "generate_summariser_task",
        "generate_heartbeat_task",
    ],
}


@pytest.mark.parametrize("service", sorted(TEMPLATES))
def test_each_service_runs_its_tasks_through_the_templates(service):
    package = REPO / "services" / service / "src" / f"acoustack_{service}"
    calls = {
        ast.unparse(node.func)
        for path in package.rglob("*.py")
        for node in ast.walk(parse(path))
        if isinstance(node, ast.Call)
    }
    for template in TEMPLATES[service]:
        assert template in calls, f"{service} never calls {template}"


def test_compose_defaults_live_once_in_the_env_file():
    compose = (REPO / "compose" / "compose.yaml").read_text()
    defaults = dict(
        line.split("=", 1)
        for line in (REPO / "compose" / ".env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    fallbacks = re.findall(r"\$\{[A-Z_]+:-[^}]*\}", compose)
    assert not fallbacks, f"compose.yaml repeats defaults of compose/.env: {fallbacks}"
    used = set(re.findall(r"\$\{([A-Z_]+)", compose)) | set(
        re.findall(r"^\s+environment: ([A-Z_]+)$", compose, re.MULTILINE)  # compose secrets
    )
    known = set(defaults) | SECRET_KEYS
    assert used <= known, f"not in compose/.env or the secrets: {sorted(used - known)}"
    assert not SECRET_KEYS & set(defaults), "a password in compose/.env"


# What scripts/secrets.sh makes (its KEYS and PATHS lines).
SECRET_KEYS = {
    key
    for line in ("KEYS", "PATHS")
    for key in re.search(
        rf'^{line}="([^"]+)"$', (REPO / "scripts" / "secrets.sh").read_text(), re.MULTILINE
    )
    .group(1)
    .split()
}

"""Rule files in, compiled rulesets (or precise ``file:line:col`` problems) out.

This module reads: files and folders from disk, YAML with positions
(``yamlsrc.read_yaml``), and hands each file's data to ``build.build_ruleset``.
Every problem of a file is reported in one run, and one broken file never
hides another's problems.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from router.engine.build import build_ruleset
from router.engine.decide import RuleSet
from router.engine.problems import Problem, RulesError
from router.engine.yamlsrc import read_yaml

RULE_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class FileLoad:
    """The result of loading one rule file: a ruleset when it has no errors, and every problem.

    ``name`` is the ruleset the file declares and ``tests`` how many test cases it lists,
    known even when it has errors (``None`` only when the file is not readable YAML).
    """

    path: Path
    ruleset: RuleSet | None
    problems: tuple[Problem, ...]
    name: str | None = None
    tests: int | None = None

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that keep this file from loading (warnings left out)."""
        return tuple(p for p in self.problems if p.severity == "error")


@dataclass(frozen=True, slots=True)
class PathLoad:
    """Every rule file at a path: each file's load, the rulesets that loaded, all problems.

    A file whose ruleset name an earlier file already took keeps its own problems plus
    that clash, and ``ruleset=None``: only ``rulesets`` are usable.
    """

    files: tuple[FileLoad, ...]
    rulesets: dict[str, RuleSet]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


def ruleset_files(path: Path) -> list[Path]:
    """The rule files at ``path``: the file itself, or ``*.yaml``/``*.yml`` directly in a folder.

    Names starting with ``.`` are skipped, so a Kubernetes ConfigMap's ``..data``
    folder is not read twice.
    """
    if path.is_dir():
        return sorted(
            child
            for child in path.iterdir()
            if child.suffix in RULE_FILE_SUFFIXES
            and not child.name.startswith(".")
            and child.is_file()
        )
    return [path]


def load_file(path: Path | str) -> FileLoad:
    """Load one rule file; never raises for anything wrong with the file itself."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return FileLoad(path, None, (Problem(name, 1, 1, "error", f"cannot read file: {reason}"),))
    return load_bytes(raw, name, default_name=path.stem)


def load_bytes(raw: bytes, filename: str, *, default_name: str) -> FileLoad:
    """Load a rule file from its bytes (``filename`` is used in problems and as the source)."""
    data, marks, problems = read_yaml(raw, filename)
    if problems:
        return FileLoad(Path(filename), None, tuple(problems))
    built = build_ruleset(raw, data, marks, filename, default_name=default_name)
    return FileLoad(Path(filename), built.ruleset, built.problems, built.name, built.tests)


def load_path(path: Path | str) -> PathLoad:
    """Load every rule file at ``path`` (a folder or one file); never raises."""
    path = Path(path)
    if not path.exists():
        return PathLoad((), {}, (Problem(str(path), 1, 1, "error", "no such file or folder"),))
    files = ruleset_files(path)
    if not files:
        problem = Problem(str(path), 1, 1, "error", "no *.yaml or *.yml rule files here")
        return PathLoad((), {}, (problem,))
    loads: list[FileLoad] = []
    rulesets: dict[str, RuleSet] = {}
    problems: list[Problem] = []
    for file in files:
        loaded = load_file(file)
        clash = rulesets.get(loaded.ruleset.name) if loaded.ruleset is not None else None
        if loaded.ruleset is not None and clash is not None:
            message = f"ruleset '{loaded.ruleset.name}' is already defined in {clash.source}"
            problem = Problem(str(file), 1, 1, "error", message)
            loaded = replace(loaded, ruleset=None, problems=(*loaded.problems, problem))
        elif loaded.ruleset is not None:
            rulesets[loaded.ruleset.name] = loaded.ruleset
        loads.append(loaded)
        problems.extend(loaded.problems)
    return PathLoad(tuple(loads), rulesets, tuple(problems))


def load_rules(path: Path | str) -> dict[str, RuleSet]:
    """Load every ruleset at ``path`` (a folder or one file): name → :class:`RuleSet`.

    Raises :class:`RulesError` if any file has an error; warnings alone do not
    raise (they are on each ``RuleSet.warnings``).
    """
    loaded = load_path(path)
    if loaded.errors:
        raise RulesError(loaded.problems)
    return loaded.rulesets

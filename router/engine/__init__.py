"""The rule engine's public API: load, check, decide, explain and test rule files.

Everything the CLI, the reloader and the service need from the engine is here;
the modules behind it are internals. The smaller embedding API of contract §6
(``load_rules``, ``RuleSet``, ``Decision``, ``RulesError``, ``Problem``) is
re-exported by :mod:`router`.
"""

from router.engine.decide import Decision, RuleSet, decide_by_scan, decide_replayed, paths_read
from router.engine.load import (
    RULE_FILE_SUFFIXES,
    FileLoad,
    PathLoad,
    load_bytes,
    load_file,
    load_path,
    load_rules,
    ruleset_files,
)
from router.engine.problems import Problem, RulesError
from router.engine.schema import rule_file_schema
from router.engine.testing import TestResult, run_tests, unreached_rules
from router.engine.values import UNRECORDED
from router.engine.yamlsrc import MAX_FILE_BYTES

__all__ = [
    "MAX_FILE_BYTES",
    "RULE_FILE_SUFFIXES",
    "UNRECORDED",
    "Decision",
    "FileLoad",
    "PathLoad",
    "Problem",
    "RuleSet",
    "RulesError",
    "TestResult",
    "decide_by_scan",
    "decide_replayed",
    "load_bytes",
    "load_file",
    "load_path",
    "load_rules",
    "paths_read",
    "rule_file_schema",
    "ruleset_files",
    "run_tests",
    "unreached_rules",
]

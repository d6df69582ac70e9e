"""router: decides where a PolyAI voice agent's transferred call goes.

The rule engine is usable on its own (contract §6)::

    from router import load_rules
    rulesets = load_rules("rules/")
    decision = rulesets["default"].decide({"handoff": {"handoff_reason": "refund"}})
"""

from router.engine import Decision, Problem, RulesError, RuleSet, load_rules

__all__ = ["Decision", "Problem", "RuleSet", "RulesError", "load_rules"]
__version__ = "0.1.0"
"""The package's version (what ``pip`` installs)."""
__api_version__ = "1.2"
"""The version of the external contract (HTTP API, rule files, CLI) this package implements."""

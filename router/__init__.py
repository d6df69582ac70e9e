"""router: decides where a PolyAI voice agent's transferred call goes.

The rule engine is usable on its own (contract §6)::

    from router import load_rules
    rulesets = load_rules("rules/")
    decision = rulesets["default"].decide({"handoff": {"handoff_reason": "refund"}})
"""

from router.engine.decide import Decision, RuleSet
from router.engine.load import load_rules
from router.engine.problems import Problem, RulesError

__all__ = ["Decision", "Problem", "RuleSet", "RulesError", "load_rules"]
__version__ = "0.1.0"

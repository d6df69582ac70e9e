"""Tests of the rule engine (router.engine): rule files, matching, decisions."""

"""Tests of router.facts and router.budget."""

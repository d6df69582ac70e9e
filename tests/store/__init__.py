"""Tests of router.store."""

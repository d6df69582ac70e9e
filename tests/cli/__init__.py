"""Tests of the router command line, run through the real console script."""

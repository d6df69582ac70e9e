"""Tests of what integrators deploy or import: the Connect Lambda, the Genesys data action,
the Twilio Studio flow and TaskRouter workflow."""

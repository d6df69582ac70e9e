"""Why the decision service could not answer: each front turns these into its own shape."""

from __future__ import annotations

from collections.abc import Sequence

from router.engine.problems import Problem


class ServiceError(Exception):
    """Base of the decision service's refusals; the message is a sentence for humans."""


class NotReady(ServiceError):
    """No valid version of the ruleset asked for is loaded yet (the service is starting, or
    no rule file has ever been valid)."""


class RulesetNotFound(ServiceError):
    """No ruleset of that name is served (while others are)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"There is no ruleset named {name!r}.")
        self.name = name


class StoreUnavailable(ServiceError):
    """The shared store could not take or give what was asked; the caller should retry."""


class CandidateInvalid(ServiceError):
    """A candidate rule file given for replay does not pass ``router check``."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("The candidate rule file does not pass router check: see details.")
        self.problems = tuple(problems)


class CardRefused(ServiceError):
    """An agent card link whose signature is wrong or which has expired (a 403)."""


class CardNotFound(ServiceError):
    """A valid agent card link whose decision is no longer kept (expired or replaced)."""

"""One thin front per contact-centre platform over the decision service (contract §7).

Each front reads the platform's own request as the platform sends it, asks
:meth:`~router.service.DecisionService.decide_for_platform` (the same decision, record,
read-back, budget and metrics as ``POST /v1/route``, with a ``platform`` label), and
answers in the shape the platform can use without glue code:

- :mod:`router.platforms.amazon_connect`: the Connect Lambda event → a flat string map;
- :mod:`router.platforms.twilio`: a Voice webhook → TwiML, Studio → flat JSON;
- :mod:`router.platforms.genesys`: a data action's JSON → a fixed key set, no nulls.

:mod:`router.platforms.flat` holds the answer shapes and their size limits.
"""

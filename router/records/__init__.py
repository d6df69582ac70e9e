"""Decision records and replay (contract §8).

Every decision leaves a record (:mod:`router.records.record`): the facts it was decided on,
sensitive values removed (:func:`recorded_facts`), the ruleset version, the instant and the
outcome. Records are kept by the store (an in-memory ring, or a Redis Stream shared by every
replica) and optionally appended to a file (:class:`RecordFile`). :class:`Replay` decides
recorded decisions again with candidate rules and reports what would change.
"""

from router.records.facts import (
    recorded_facts,
    sensitive_paths,
)
from router.records.record import BadRecord, Record, decode_record, encode_record
from router.records.replay import ChangeGroup, Replay, ReplayReport, render_text
from router.records.writer import RecordFile

__all__ = [
    "BadRecord",
    "ChangeGroup",
    "Record",
    "RecordFile",
    "Replay",
    "ReplayReport",
    "decode_record",
    "encode_record",
    "recorded_facts",
    "render_text",
    "sensitive_paths",
]

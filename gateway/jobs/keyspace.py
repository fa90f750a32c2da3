"""Every Redis key of the Files and Batches API, built from the constants here and nowhere else.

::

    tg:job:file:<file_id>            the file's record (JSON)
    tg:job:file:<file_id>:body       the file's bytes
    tg:job:files:<owner>             sorted set of the owner's file ids, scored by creation time
    tg:job:batch:<batch_id>          the batch's record (JSON)
    tg:job:batch:<batch_id>:out      hash: line index -> the output line (one per line that ran)
    tg:job:batch:<batch_id>:err      hash: line index -> the error line
    tg:job:batches:<owner>           sorted set of the owner's batch ids, scored by creation time
    tg:job:active                    set of batch ids not yet in a terminal state
    tg:job:lease:<batch_id>          which process runs the batch now (expires unless renewed)

``<owner>`` is ``key:<key id>``; ``all`` lists every owner's objects (what the admin key sees).
"""

from __future__ import annotations

PREFIX = "tg:job:"
FILE = PREFIX + "file:"
FILES = PREFIX + "files:"
BATCH = PREFIX + "batch:"
BATCHES = PREFIX + "batches:"
ACTIVE = PREFIX + "active"
LEASE = PREFIX + "lease:"
EVERYONE = "all"


def file_key(file_id: str) -> str:
    return FILE + file_id


def file_body(file_id: str) -> str:
    return FILE + file_id + ":body"


def files_of(owner: str) -> str:
    return FILES + owner


def batch_key(batch_id: str) -> str:
    return BATCH + batch_id


def batch_outputs(batch_id: str) -> str:
    return BATCH + batch_id + ":out"


def batch_errors(batch_id: str) -> str:
    return BATCH + batch_id + ":err"


def batches_of(owner: str) -> str:
    return BATCHES + owner


def lease(batch_id: str) -> str:
    return LEASE + batch_id


def owner_of(key_id: str) -> str:
    return "key:" + key_id

"""The wire fuzzer: random frames, envelopes and requests against the real daemon.

``strategies`` shapes random values from ``docs/schema.json``; ``harness``
drives a daemon subprocess over its socket and checks the invariants of issue 11
(the daemon never exits, every request gets a reply or its connection closes,
another client's ``version.version`` stays fast, RSS stays bounded). The CI slice
is ``test_wire_fuzz.py``; the long run is ``bench/fuzz.py``.
"""

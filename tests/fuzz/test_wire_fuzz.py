"""The wire fuzzer's CI slice: every method of ``docs/schema.json``, random frames and
envelopes, clients that close early, requests around the 16 MiB cap, and a mixed load
from two clients at once; the invariants of issue 11 after each example.

Bounded to a few minutes on 2 cores. Examples are derandomized (the same every run);
``PYCONTAINERD_FUZZ_SEED=<int>`` draws others, reproducibly. The long run is
``bench/fuzz.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from . import strategies as S
from .harness import (
    PARTIAL_FRAME_BUDGET,
    PROBE_LIMIT_MS,
    RSS_MARGIN,
    Harness,
    Violation,
    Worker,
    report,
)

SEED = os.environ.get("PYCONTAINERD_FUZZ_SEED")
PER_METHOD = 10
"""Cases per method (each 1-4 calls of it)."""


def _settings(examples: int) -> Callable[[Any], Any]:
    """No database, no shrinking (a real daemon is not a pure function), no deadline."""
    conf = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        print_blob=False,
    )

    def apply(fn: Any) -> Any:
        fn = conf(fn)
        return seed(int(SEED))(fn) if SEED is not None else fn

    return apply


def _clean(h: Harness, since: int) -> None:
    """No invariant broken since violation ``since``."""
    broken: list[Violation] = h.hard_violations(since)
    assert broken == [], "\n".join(v.line() for v in broken)


def _run(h: Harness, worker: Worker, case: S.Case) -> None:
    since = len(h.violations)
    worker.run(case)
    _clean(h, since)


def _fuzz(h: Harness, cases: st.SearchStrategy[S.Case], examples: int) -> None:
    """Run ``examples`` cases drawn from ``cases`` on one client, each checked."""
    worker = h.worker()

    @_settings(examples)
    @given(cases)
    def fuzz(case: S.Case) -> None:
        _run(h, worker, case)

    try:
        fuzz()
    finally:
        worker.close()


@pytest.mark.parametrize("method", S.METHODS)
def test_every_method_gets_a_reply_or_a_close(harness: Harness, method: str) -> None:
    before = harness.stats.per_method[method]
    _fuzz(harness, S.request_case(st.just(method)), PER_METHOD)
    assert harness.stats.per_method[method] - before >= PER_METHOD


def test_frames_and_envelopes(harness: Harness) -> None:
    """Random bytes, truncated msgpack, wrong arity and types, huge msgids, unknown
    methods, notifications, responses from the client, deep nesting."""
    _fuzz(harness, S.frame_case(), 600)


def test_clients_that_close_early(harness: Harness) -> None:
    """Send and close before reading, close mid-frame, half-close, cancel at once."""
    early = st.sampled_from(["after_send", "mid_frame", "half_close", "cancel"])
    cases = st.builds(
        lambda c, close: S.RequestCase(c.calls, close),
        S.request_case(),
        early,
    )
    _fuzz(harness, cases, 400)


def test_requests_around_the_message_cap(harness: Harness) -> None:
    _fuzz(harness, S.over_cap_case(), 6)


def test_mixed_load_from_two_clients(harness: Harness) -> None:
    """Random cases from two clients at once for at most 60 s."""
    stop_at = time.monotonic() + 60
    since = len(harness.violations)
    cases: list[S.Case] = []

    @_settings(1500)
    @given(S.case())
    def collect(case: S.Case) -> None:
        cases.append(case)

    collect()
    errors: list[BaseException] = []

    def client(share: list[S.Case]) -> None:
        worker = harness.worker()
        try:
            for case in share:
                if time.monotonic() > stop_at:
                    break
                worker.run(case)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            worker.close()

    threads = [threading.Thread(target=client, args=(cases[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _clean(harness, since)


def test_the_daemon_stayed_up_fast_and_bounded(harness: Harness) -> None:
    """Over the whole module: no exit, probe latency and RSS within bounds."""
    s = harness.stats
    print(report(harness, time.monotonic() - harness.started))
    assert s.daemon_exits == 0 and s.daemon_hangs == 0
    assert s.rss_max <= s.rss_idle + PARTIAL_FRAME_BUDGET + RSS_MARGIN
    assert s.probe_summary()["samples"] > 100
    causes = "\n".join(f"{ms:.0f} ms beside: {near}" for ms, near in harness.slow_probe_causes())
    assert s.probe_failures() == [], f"version.version over {PROBE_LIMIT_MS} ms:\n{causes}"

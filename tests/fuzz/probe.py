"""The latency probe: another client calling ``version.version`` in a loop.

Runs as its own process (``python -m tests.fuzz.probe ADDRESS INTERVAL``), so
the fuzzer's threads never delay it; prints one line per call,
``<monotonic end> <latency ms>``, or ``<monotonic> down <error>`` while the
daemon cannot be reached. CLOCK_MONOTONIC is system-wide, so the fuzzer lines
the samples up with its own requests.
"""

from __future__ import annotations

import contextlib
import sys
import time

from tests.integration.daemon import RawConnection, RemoteError


def main() -> None:
    address, interval = sys.argv[1], float(sys.argv[2])
    while True:
        try:
            with RawConnection(address, timeout=60) as conn:
                while True:
                    start = time.monotonic()
                    conn.call("version.version", {})
                    end = time.monotonic()
                    print(f"{end:.6f} {(end - start) * 1000:.3f}", flush=True)
                    time.sleep(interval)
        except (OSError, ConnectionError, RemoteError) as exc:
            print(f"{time.monotonic():.6f} down {type(exc).__name__}", flush=True)
            time.sleep(0.05)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        main()

"""Does the htcondor2 binding release the GIL while ``Schedd.query`` waits on the network?

csctl's snapshot asks the schedds, the collector and the clouds from threads; that only
overlaps if the bindings let other threads run while they wait. The peer here is a
socket that accepts the connection and never answers (no test bed needed), so the query
waits until its timeout (~20 s). Meanwhile the main thread asks for 0.1 s sleeps and a
second thread counts: with the GIL released both go on as if nothing happened; with it
held, the first sleep ends only when the query does.

Expected if the GIL is released: sleep overshoot ~0 ms, counting rate ratio ~1.
"""

from __future__ import annotations

import socket
import threading
import time

import classad2
import htcondor2

VERSION = "$CondorVersion: 23.9.6 2024-07-02 BuildID: Debian-23.9.6 PackageID: 23.9.6 $"


class Counter(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.count = 0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            self.count += 1


def rate(counter: Counter, busy: threading.Thread | None = None) -> tuple[float, float]:
    """Counts per second of ``counter`` and the worst overshoot (s) of 0.1 s sleeps, for
    one second (or while ``busy`` runs)."""
    start, began, worst = counter.count, time.perf_counter(), 0.0
    while busy.is_alive() if busy else time.perf_counter() - began < 1.0:
        t0 = time.perf_counter()
        time.sleep(0.1)
        worst = max(worst, time.perf_counter() - t0 - 0.1)
    return (counter.count - start) / (time.perf_counter() - began), worst


def main() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    address = f"<127.0.0.1:{silent.getsockname()[1]}>"
    ad = classad2.ClassAd(
        {"MyAddress": address, "MyType": "Scheduler", "Name": "silent", "CondorVersion": VERSION}
    )
    counter = Counter()
    counter.start()
    free, free_overshoot = rate(counter)
    outcome: list[str] = []

    def query() -> None:
        t0 = time.perf_counter()
        try:
            htcondor2.Schedd(ad).query("true", ["ClusterId"])
            outcome.append(f"answered after {time.perf_counter() - t0:.1f} s")
        except htcondor2.HTCondorException as exc:
            outcome.append(f"failed after {time.perf_counter() - t0:.1f} s: {str(exc)[:60]}")

    waiting = threading.Thread(target=query)
    waiting.start()
    during, during_overshoot = rate(counter, waiting)
    waiting.join()
    counter.stop = True
    silent.close()
    print(f"htcondor2 {htcondor2.version()}: Schedd.query to a peer that never answers ({outcome[0]})")
    print("| while | counting rate per s | worst overshoot of a 0.1 s sleep, ms |")
    print("| --- | ---: | ---: |")
    print(f"| nothing else runs | {free:,.0f} | {free_overshoot * 1000:.0f} |")
    print(f"| a Schedd.query waits | {during:,.0f} | {during_overshoot * 1000:.0f} |")
    print("GIL released if the rates are alike and the overshoot stays near 0 ms")


if __name__ == "__main__":
    main()

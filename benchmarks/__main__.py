"""Runs every benchmark and prints its table: `make bench` or `python -m benchmarks [name ...]`."""

from __future__ import annotations

import sys
import time

from benchmarks import banking77, clinc150, handoff_queue, kb_demo, kb_scale, nlu, system
from firstline.config import Settings

BENCHMARKS = {
    "kb-demo": kb_demo.run,
    "system": system.run,
    "handoff-queue": handoff_queue.run,
    "clinc150": clinc150.run,
    "banking77": banking77.run,
    "kb-scale": kb_scale.run,
    "nlu": nlu.run,
}


def main(names: list[str]) -> None:
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}")
    settings = Settings()
    for name in names or list(BENCHMARKS):
        started = time.monotonic()
        print(BENCHMARKS[name](settings))
        print(f"({name}: {time.monotonic() - started:.0f}s)\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The garbage collector tuned for a long-running detector process."""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def settle_heap() -> None:
    """Move what lives now (model, profiles, caches) out of the cyclic collector's sight.

    A detector allocates many short-lived objects per event; with CPython's defaults the
    collector then runs thousands of times a minute and its older generations rescan every
    long-lived profile. Frozen objects are still freed by reference counting.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

"""The progress callback long jobs take (fitting, the batch job, Dask), defined once for all of them."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressCallback"]

# ``progress(done, total)``: units done so far of an estimated total (documents, or multiply-adds).
ProgressCallback = Callable[[int, int], None]

"""Leave-one-out: the pointwise log-likelihood of the PyMC model and of the fused kernels, smoothed by
PSIS in blocks of units.
"""

from groupfx.util.numba_cache import refresh_stale_caches

refresh_stale_caches()  # before any module with cached numba code is imported

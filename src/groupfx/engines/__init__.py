"""How a model is run: the fused log-density and gradient kernels (and their C callbacks for nutpie), the
model's expected outcome, sampling with nutpie, the trace, and the sampler's diagnostics.
"""

from groupfx.util.numba_cache import refresh_stale_caches

refresh_stale_caches()  # before any module with cached numba code is imported

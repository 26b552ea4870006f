"""How a model is run: the fused log-density and gradient kernels (and their C callbacks for nutpie), the
model's expected outcome, sampling with nutpie, the trace, and the sampler's diagnostics.
"""

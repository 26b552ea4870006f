"""Leave-one-out: the pointwise log-likelihood of the PyMC model and of the fused kernels, smoothed by
PSIS in blocks of units.
"""

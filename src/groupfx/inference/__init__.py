"""How a model is run, chosen in one place: the fused kernel or the PyMC graph (numba or JAX), and the engine
that compiles it, takes new data, samples it, scores it by LOO and gives its expected outcome.
"""

"""The models: priors, outcome families (link and likelihood), the five strategies as PyMC builders in
one registry, and the models' graphs.
"""

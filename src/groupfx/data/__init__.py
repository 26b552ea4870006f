"""The data in: the validated table (GroupedData), the reader of users' tables, formulas, packaged
data sets, simulation from the seed's causal graph, and what y may hold under each family.
"""

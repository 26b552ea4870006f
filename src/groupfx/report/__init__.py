"""What a reader sees: the figures, the report's sections and HTML page (templates/), the output folder,
and the terminal summary.
"""

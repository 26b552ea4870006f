"""What a fit returns (Fit, Fits), its estimates and comparison tables, effects on the outcome scale, model
checks, and the frequentist cross-check.
"""

"""Tests of groupfx.loo."""

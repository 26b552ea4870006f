"""Tests of groupfx.results."""

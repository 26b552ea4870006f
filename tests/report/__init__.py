"""Tests of groupfx.report."""

"""Tests of groupfx.engines."""

"""Tests of groupfx.data."""

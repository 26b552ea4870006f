"""Tests of groupfx.util."""

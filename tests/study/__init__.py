"""Tests of groupfx.study."""

"""Tests of groupfx.models."""

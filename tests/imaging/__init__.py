"""Tests of api.imaging (import, render, export)."""

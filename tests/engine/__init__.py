"""Tests of the Django-free generation engine (generation/)."""

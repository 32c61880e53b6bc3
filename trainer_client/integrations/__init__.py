"""Integrations of the curriculum client with trainers users already run."""

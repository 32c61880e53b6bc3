"""Curriculum scheduling service for RL post-training (DUMP-style distribution scheduling).

Importing this package imports nothing heavy: the web app lives in ``service.app`` and the
pure scheduling math in ``curriculum_core``.
"""

__version__ = "0.1.0"

"""DAPT Studio's engine: Distribution-Aware Prompt Tuning of CLIP, with no user-interface code."""

__version__ = "0.1.0"

"""Workflows: one module per user workflow, a typed config in and a typed result out.

The only layer that composes the packages below it; nothing below imports it back.
"""

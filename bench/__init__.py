"""Benchmarks of ckptwidgets against plain TensorFlow, measured in the same run.

Run ``python -m bench.run`` (``--quick`` for a smoke run, ``--only NAME`` for one
measurement). See the README's Benchmarks section.
"""

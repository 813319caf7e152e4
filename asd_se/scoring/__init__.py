"""THE scoring engine (``engine.py``): evaluate, render, live and explain-eval score through it."""

"""Explanations measured: localisation on mouths, faithfulness, sanity checks, the explain-eval run and report."""

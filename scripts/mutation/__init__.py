"""Mutation testing for the unit tier: ``python -m scripts.mutation`` (``tox -e mutation``).

- :mod:`scripts.mutation.mutants`: the mutants of one source file, each a
  single edit made in the text (so line numbers hold).
- :mod:`scripts.mutation.runner`: one traced run to learn which tests execute
  which lines, then a forked pytest run per mutant with only those tests and
  the mutated module swapped in by an import finder.
- ``equivalents.yaml``: mutants that change nothing observable, each with its
  reason; they are left out of the score.
"""

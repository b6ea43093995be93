"""The benchmarks, run from the repository root as modules: `python -m bench.run`.

They use what the tests use (the oracle, the generator, the Slack stand-in, real
processes) from `tests`; nothing in `tests` imports from here.
"""

"""The benchmarks: scripts that measure the package and save their figures as JSON in benchmarks/results/.

Each runs from the repository root as ``python -m benchmarks.NAME ARGS`` (the commands are in each module's
docstring), saves through :mod:`benchmarks.common`, and declares ``summary(result) -> list[str]``: the Markdown
of one of its results, which ``python -m benchmarks.report`` strings into benchmarks/REPORT.md. Nothing here is
imported by the package ``activemat``.
"""

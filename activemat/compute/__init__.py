"""What one calculation is: named DFT presets and the band-gap task.

A task is a plain function ``(candidate, attempt, atoms, preset, scratch) ->
CalculationRecord`` that runs GPAW through ASE and never raises for a failed
calculation (failure is data). Also here: the MPI wrapper that runs a task on
several cores, and the replay oracle, a named stand-in for DFT in loop tests.
This layer knows no store, cluster, model or loop (an import-linter contract
checks it).
"""

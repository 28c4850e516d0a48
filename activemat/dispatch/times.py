"""SLURM time limits and worker lifetimes: a worker retires before its job's walltime ends.

Pure functions of the [cluster] section's strings, so the campaign file's
validation can check them before anything is submitted.
"""

from __future__ import annotations

from dask.utils import parse_timedelta


def slurm_time_seconds(text: str) -> int:
    """Seconds in a SLURM time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.

    >>> slurm_time_seconds("01:00:00"), slurm_time_seconds("30"), slurm_time_seconds("1-12")
    (3600, 1800, 129600)
    """
    try:
        days, _, rest = text.strip().rpartition("-")
        parts = [int(p) for p in rest.split(":")]
        if days:
            hms = parts + [0] * (3 - len(parts))  # D-HH, D-HH:MM, D-HH:MM:SS
        else:
            hms = {1: [0, parts[0], 0], 2: [0, *parts], 3: parts}[len(parts)]
        if len(hms) != 3 or min(hms) < 0:
            raise ValueError
        return int(days or 0) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
    except (ValueError, KeyError):
        raise ValueError(f"walltime '{text}' is not a SLURM time ([D-]HH:MM:SS, MM or D-HH)") from None


def _seconds(text: str, what: str) -> float:
    try:
        return float(parse_timedelta(text))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{what} '{text}' is not a duration like '50m', '90s' or '1h'") from None


def worker_lifetime(walltime: str, lifetime: str | None, stagger: str) -> tuple[int, int]:
    """Lifetime and stagger (s) of a worker in a job of `walltime`; it retires before the job ends.

    The default lifetime leaves max(2 min, 10% of the walltime) plus the
    stagger for the worker to hand back its work. The stagger is at most a
    quarter of the lifetime: a worker's deadline (lifetime +- stagger) must
    fall well after its start, or on a short walltime (a 5-minute debug
    queue) workers would retire as soon as they arrive.

    >>> worker_lifetime("01:00:00", None, "2m")
    (3120, 120)
    >>> worker_lifetime("00:05:00", None, "2m")  # 3 min usable: the stagger shrinks to 36 s
    (144, 36)
    """
    wall = slurm_time_seconds(walltime)
    spread = int(_seconds(stagger, "lifetime_stagger"))
    if lifetime:
        life = int(_seconds(lifetime, "lifetime"))
        spread = min(spread, life // 4)
    else:
        usable = int(wall - max(120, 0.1 * wall))
        spread = min(spread, usable // 5)  # then spread <= life / 4, as above
        life = usable - spread
    if life <= 0 or life + spread >= wall:
        raise ValueError(f"worker lifetime ({lifetime or f'{life}s'}) plus lifetime_stagger ({stagger}) must be "
                         f"shorter than walltime {walltime}; set a longer walltime or a shorter lifetime")
    return life, spread


def check_slurm_times(walltime: str, lifetime: str | None, stagger: str) -> None:
    """Raise ValueError (with what to change) unless the walltime and worker lifetime fit together."""
    worker_lifetime(walltime, lifetime, stagger)

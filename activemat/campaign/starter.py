"""The starter kit: ``activemat init TEMPLATE [DIR]`` writes a campaign file from a named template.

The templates are package data (:mod:`activemat.templates`), so an installed
wheel carries them; the repository's ``campaigns/`` and ``slurm/`` folders
link to the same files. With ``slurm=True`` the kit also holds the driver's
SLURM job script (``campaign.sbatch``) and an example dask-jobqueue profile
(``jobqueue.yaml``), and the campaign's ``[cluster]`` section asks for SLURM
workers from that profile. Nothing is ever overwritten: if any file of the
kit exists, nothing is written.

>>> sorted(templates())[:2]
['demo', 'multi-fidelity']
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from activemat.errors import InputError

#: The package holding the kit's files.
SHIPPED = "activemat.templates"

#: Template name (its file is ``<name>.toml``) -> what it is, one line. The order is the listing's.
TEMPLATES = {
    "demo": "10 quick PBE gaps (gpaw-fast) of the 402 16-atom Si/Ge configurations on 2 local workers: minutes",
    "seed-tutorial": "the classic seed tutorial: 6 fixed 16-atom compositions, linear regression on x (gpaw-fast)",
    "seed-tutorial-active": "the seed tutorial's space and budget, chosen by a Gaussian process (max_std)",
    "sige16-pbe": "production 16-atom PBE map (gpaw-pbe-pw) with gpaw-fast as the cheap level: the cheapest "
                  "measured route to MAE 0.01 eV",
    "sige16-accurate": "production against experiment: TB09 on relaxed 16-atom cells, learnt from two PBE "
                       "levels, until the gap curve's std is below 0.02 eV (hours to days)",
    "sige32-fast": "32-atom cells: 200 random decorations per composition, SQS seeds, icet cluster vectors "
                   "(gpaw-fast)",
    "multi-fidelity": "TB09 gaps of the 16-atom space learnt from cheap PBE gaps by co-kriging",
    "sige16-pbe-nystroem": "sige16-pbe with the scalable Nystroem model instead of the exact GP",
    "algaas16-pbe-fast": "Al(x)Ga(1-x)As on zincblende: all 16 cation decorations of the 16-atom cell with "
                         "pbe-fast, the gap curve and the Gamma-to-X crossover from the valley gaps",
}

#: The SLURM files ``--slurm`` adds: the driver's job script and the dask-jobqueue profile.
SLURM_FILES = ("campaign.sbatch", "jobqueue.yaml")


def templates() -> dict[str, str]:
    """Template name -> one-line description, in listing order."""
    return dict(TEMPLATES)


def _shipped(name: str) -> str:
    return resources.files(SHIPPED).joinpath(name).read_text()


def template_text(name: str) -> str:
    """The campaign file of template ``name``; InputError naming the templates if there is none."""
    if name not in TEMPLATES:
        raise InputError(f"no template '{name}'; templates: {', '.join(TEMPLATES)} (`activemat init --list` "
                         "describes them)")
    return _shipped(f"{name}.toml")


def profile_name() -> str:
    """The name of the example dask-jobqueue profile (``jobqueue.<name>`` in ``jobqueue.yaml``)."""
    import yaml

    return next(iter(yaml.safe_load(_shipped("jobqueue.yaml"))["jobqueue"]))


_TABLE = re.compile(r"^\s*\[")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def with_slurm_cluster(text: str, file_name: str) -> str:
    """The campaign text with its ``[cluster]`` section asking for SLURM workers from the example profile.

    Keys of the template's section that mean the same on SLURM (``prefetch``,
    ``dashboard``) stay; ``kind`` and the local ``workers`` go.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().split("#")[0].strip() == "[cluster]"), None)
    if start is None:
        head, kept, tail = lines, [], []
        if head and head[-1].strip():
            head = [*head, ""]
    else:
        end = next((j for j in range(start + 1, len(lines)) if _TABLE.match(lines[j])), len(lines))
        head, tail = lines[:start], lines[end:]
        kept = [line for line in lines[start + 1:end]
                if _KEY.match(line) and _KEY.match(line).group(1) not in ("kind", "workers")]
        if tail:
            kept.append("")
    name = profile_name()
    section = [
        "[cluster]",
        f"# SLURM workers (written by `activemat init --slurm`): jobs of the dask-jobqueue profile \"{name}\" in",
        "# jobqueue.yaml; edit it for your site and copy it to ~/.config/dask/. Check the worker job script with",
        f"# `activemat run --dry-run {file_name}`, then submit the driver: `sbatch campaign.sbatch {file_name}`.",
        'kind = "slurm"',
        f'profile = "{name}"',
        "maximum_jobs = 2                 # worker jobs at most (adaptive scaling between minimum_jobs and this)",
    ]
    return "\n".join([*head, *section, *kept, *tail]) + "\n"


def write_starter(name: str, folder: str | os.PathLike = ".", *, slurm: bool = False) -> list[Path]:
    """Write template ``name`` as ``<folder>/<name>.toml`` (and with ``slurm`` the SLURM files); return the paths.

    The folder is created if missing. Nothing is overwritten: if any of the
    files exists, InputError names it and nothing is written.
    """
    text = template_text(name)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write the starter kit into {folder}: it is a file; give a folder")
    files = {folder / f"{name}.toml": with_slurm_cluster(text, f"{name}.toml") if slurm else text}
    if slurm:
        files.update({folder / f: _shipped(f) for f in SLURM_FILES})
    existing = [str(p) for p in files if p.exists() or p.is_symlink()]
    if existing:
        raise InputError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; activemat init "
                         "never overwrites a file: move it away or give another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, content in files.items():
            with open(path, "x") as fh:
                fh.write(content)
            if path.suffix == ".sbatch":
                path.chmod(0o755)
    except OSError as exc:
        raise InputError(f"cannot write the starter kit into {folder}: {exc.strerror or exc}") from None
    return list(files)


def next_steps(paths: list[Path], store: str, *, slurm: bool) -> list[str]:
    """What to do with a kit :func:`write_starter` wrote, as lines to print (``store``: the campaign's store)."""
    campaign = paths[0]
    folder = campaign.parent
    cd = [] if folder == Path(".") else [f"  cd {folder}"]
    lines = [f"wrote {', '.join(str(p) for p in paths)}", "next:", *cd]
    if slurm:
        lines += ["  edit jobqueue.yaml for your site (partition, account, module load lines), then copy it to "
                  "~/.config/dask/",
                  f"  activemat run --dry-run {campaign.name}    # the worker job script dask-jobqueue would submit",
                  f"  sbatch campaign.sbatch {campaign.name}     # the driver as a job; its store: {store}"]
    else:
        lines += [f"  activemat run --dry-run {campaign.name}    # what would run, without running it",
                  f"  activemat run {campaign.name}              # its store: {store}"]
    return lines

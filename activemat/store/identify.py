"""What a file given as a store is, when it is not one: a campaign file passed where its store belongs.

``activemat status campaign.toml`` is an easy slip: the campaign file and
its store are the two paths a user has. A reader that fails to open a file
as HDF5 asks :func:`campaign_file_instead` before it reports a damaged
store, so the message names the store to pass rather than suggesting a
restore from backup. The store layer knows no campaign model: this reads the
TOML text and the one key that names the store.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "demo.toml")
>>> _ = open(path, "w").write('[campaign]\\nstore = "runs/demo.h5"\\n')
>>> campaign_file_instead(path).endswith("is a campaign file, not a store: give the store it writes, runs/demo.h5")
True
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

#: Files larger than this are not read as text to look for a campaign (campaign files are a few kB).
MAX_TEXT = 1 << 20
#: Tables of a campaign file (activemat.campaign.config.CampaignConfig's sections).
SECTIONS = frozenset({"campaign", "space", "calculator", "model", "strategy", "stop", "cluster", "faults"})


def campaign_file_instead(path: str | os.PathLike) -> str | None:
    """A one-line message if ``path`` is a campaign file (TOML with a campaign's tables), naming its store; else
    None."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_TEXT:
            return None
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(data, dict) or not SECTIONS & set(data):
        return None
    store = data.get("campaign", {}).get("store") if isinstance(data.get("campaign"), dict) else None
    if isinstance(store, str) and store:
        return f"{path} is a campaign file, not a store: give the store it writes, {store}"
    return (f"{path} is a campaign file, not a store: give the store it writes ([campaign] store; "
            f"`activemat run --dry-run {path}` prints it)")

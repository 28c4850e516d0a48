"""Sphinx configuration: MyST Markdown pages; reference pages generated from the code (docs/_ext)."""

from __future__ import annotations

import sys
from pathlib import Path

import activemat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))


def _repo_root() -> Path:
    """The repository: docs/.. when these docs sit in it, else where activemat is installed from (editable)."""
    for root in (HERE.parent, Path(activemat.__file__).resolve().parents[1]):
        if (root / "pyproject.toml").is_file() and (root / "slurm").is_dir():
            return root
    return HERE.parent


project = "activemat"
author = "the activemat developers"
copyright = "the activemat developers"
release = version = activemat.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
    "sphinxcontrib.autodoc_pydantic",
    "activemat_docs",
]
activemat_repo = str(_repo_root())

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "results/*.md"]  # results/: generated fragments, included by results.md
templates_path = ["_templates"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Python API: one page per module, every module found by itself (autosummary :recursive:).
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {
    "members": True, "undoc-members": True, "show-inheritance": True,
    # scikit-learn's metadata-routing methods, generated on every estimator class
    "exclude-members": "set_fit_request,set_predict_request,set_score_request",
}
autodoc_member_order = "bysource"
add_module_names = False
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_param = False  # parameter "types" are plain text (the docstrings describe there), no cross-references
napoleon_use_ivar = True  # "Attributes" sections as fields, not as second descriptions of dataclass fields

# Campaign keys: pydantic models, fields with their defaults, constraints and descriptions.
autodoc_pydantic_model_show_json = False
autodoc_pydantic_model_show_config_summary = False
autodoc_pydantic_model_show_validator_summary = False
autodoc_pydantic_model_show_validator_members = False
autodoc_pydantic_field_list_validators = False
autodoc_pydantic_model_show_field_summary = False
autodoc_pydantic_model_member_order = "bysource"
autodoc_pydantic_field_show_constraints = True
autodoc_pydantic_model_signature_prefix = "section"


def _skip_campaign_models(app, what, name, obj, skip, options):
    """The campaign file's models are documented once, on reference/campaign, not again in the API pages."""
    from pydantic import BaseModel

    if what == "module" and isinstance(obj, type) and issubclass(obj, BaseModel) \
            and obj.__module__ == "activemat.campaign.config":
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_campaign_models)


html_theme = "furo"
html_title = f"activemat {release}"
html_static_path: list[str] = []

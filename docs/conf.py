"""Sphinx configuration of the hub_viz documentation (MyST Markdown, the jupyterhub theme).

The reference pages are generated from the code at build time (``_ext/``): the
configuration from the traitlets, the REST API from ``openapi.yaml``, the CLI
from its parser and the frameworks from ``hub_viz.frameworks``. A trait or an
API field without a description fails the build.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "hub_viz"
author = "hub_viz contributors"
copyright = "2026, hub_viz contributors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "autodoc_traits",
    "sphinx_copybutton",
    "hub_viz_reference",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]
# SECURITY.md's sections are included as they are; their headings start below the
# page's own title
suppress_warnings = ["myst.header"]
# Every cross-reference must resolve: a link to a page or an anchor that does not exist
# is a warning (myst.xref_missing), and -W in CI makes it an error. There is no internet
# in CI, so links to other sites are not checked.
nitpicky = True
# Internal modules configure()'s docstring names that have no page of their own.
nitpick_ignore = [
    ("py:mod", "hub_viz.launcher.activity"),
    ("py:mod", "hub_viz.profiles"),
    ("py:class", "hub_viz.hubproxy.DashboardProxy"),
    ("py:class", "hub_viz.environments.EnvironmentBuilder"),
    ("py:func", "hub_viz.lti.configure_lti"),
]

html_theme = "jupyterhub_sphinx_theme"
html_title = "hub_viz"
html_theme_options = {"navigation_with_keys": False}

autodoc_typehints = "none"
autodoc_member_order = "bysource"

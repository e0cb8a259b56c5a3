"""hub_viz: dashboards on JupyterHub for classrooms and labs."""

__version__ = "0.1.0"

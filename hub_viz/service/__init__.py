"""The hub_viz service: dashboards' store, REST API, gallery, publishing and open flow."""

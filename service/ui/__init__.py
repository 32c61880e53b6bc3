"""The dashboard's static files (pages, scripts, styles), served by :mod:`service.ui_routes`."""

"""Small adapters that let a framework's production server load an app file."""

"""provision's built-in plugins, each a vertical slice of one feature."""

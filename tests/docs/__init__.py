"""The documentation site: generated pages are current, every page is reachable, every include resolves."""

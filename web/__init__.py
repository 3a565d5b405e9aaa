"""The officers' workbench: server-rendered pages, message catalogs and vendored assets."""

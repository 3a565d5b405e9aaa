"""Route modules of the workbench, one per page family."""

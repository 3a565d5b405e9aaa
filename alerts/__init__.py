"""Alerts on subjects: grouping, dispatch, notifications and the audit chain."""

"""Subject library: regulated subjects, supervising departments and device bindings.

A package of its own rather than part of `alerts` (where DESIGN.md first placed it) because
both `rules` (device roles, subject grade and attributes per reading) and `alerts` (who
supervises a subject, is it cross-department) need it, and `rules` may not import `alerts`.
"""

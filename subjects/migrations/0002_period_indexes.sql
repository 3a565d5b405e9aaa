-- The directory cache asks after every edit when the next supervision period starts or
-- ends; these keep that an index probe instead of a scan of every link.
CREATE INDEX subject_departments_since ON subject_departments (since);
CREATE INDEX subject_departments_until ON subject_departments (until) WHERE until IS NOT NULL;

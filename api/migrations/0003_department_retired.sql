-- Codes are never reused: a department whose meaning ended is kept for its history, marked
-- retired, and may name the code that took over. Retired departments take no new links.
ALTER TABLE departments ADD COLUMN retired boolean NOT NULL DEFAULT false;
ALTER TABLE departments ADD COLUMN replaced_by text REFERENCES departments (code);

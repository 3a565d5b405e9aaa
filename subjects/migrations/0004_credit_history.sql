-- Each change of a subject's credit grade or scheme: the new and previous values, who made
-- it, for which department, when, and from where (created, edited, imported). The current
-- grade stays on subjects; this is its history for the subject file and credit reviews.
CREATE TABLE subject_credit_history (
    id bigserial PRIMARY KEY,
    credit_code text NOT NULL REFERENCES subjects (credit_code) ON DELETE CASCADE,
    credit_scheme text NOT NULL,
    credit_grade text NOT NULL,
    previous_scheme text,
    previous_grade text,
    changed_by text NOT NULL,
    department text NOT NULL,
    source text NOT NULL CHECK (source IN ('create', 'edit', 'import', 'migration')),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subject_credit_history_code ON subject_credit_history (credit_code, changed_at DESC);
-- Subjects that exist already start their history with the grade on record, so no file
-- shows an empty history for a grade it has.
INSERT INTO subject_credit_history
    (credit_code, credit_scheme, credit_grade, changed_by, department, source, changed_at)
SELECT credit_code, credit_scheme, credit_grade, 'migration', '', 'migration', updated_at
FROM subjects;

-- A subject's credit grade belongs to a scheme: A-D, or Jiangsu's five-colour environmental
-- credit (绿/蓝/黄/红/黑, stored as green/blue/yellow/red/black). Existing rows are A-D.
ALTER TABLE subjects ADD COLUMN credit_scheme text NOT NULL DEFAULT 'abcd';
ALTER TABLE subjects DROP CONSTRAINT subjects_credit_grade_check;
ALTER TABLE subjects ADD CONSTRAINT subjects_credit_grade_in_scheme CHECK (
    (credit_scheme = 'abcd' AND credit_grade IN ('A', 'B', 'C', 'D'))
    OR (credit_scheme = 'jiangsu_env'
        AND credit_grade IN ('green', 'blue', 'yellow', 'red', 'black'))
);

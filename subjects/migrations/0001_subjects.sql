-- Subject library: regulated subjects, the departments supervising them (with a period) and
-- the devices bound to them with a role.
CREATE TABLE subjects (
    credit_code text PRIMARY KEY CHECK (credit_code ~ '^[0-9A-HJ-NP-RTUW-Y]{18}$'),
    name text NOT NULL CHECK (btrim(name) <> ''),
    address text NOT NULL DEFAULT '',
    grid text NOT NULL DEFAULT '',
    industry text NOT NULL DEFAULT '',
    credit_grade text NOT NULL DEFAULT 'B' CHECK (credit_grade IN ('A', 'B', 'C', 'D')),
    risk_level text NOT NULL DEFAULT 'general'
        CHECK (risk_level IN ('low', 'general', 'considerable', 'major')),
    tags text[] NOT NULL DEFAULT '{}',
    -- Numbers rules compare against, e.g. {"permit.cod_mg_l": 50}; only numbers allowed.
    attributes jsonb NOT NULL DEFAULT '{}' CHECK (
        jsonb_typeof(attributes) = 'object'
        AND NOT jsonb_path_exists(attributes, '$.* ? (@.type() != "number")')
    ),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subjects_grid ON subjects (grid);
CREATE INDEX subjects_industry ON subjects (industry);
CREATE INDEX subjects_grade ON subjects (credit_grade);
CREATE INDEX subjects_tags ON subjects USING gin (tags);
CREATE INDEX subjects_name ON subjects (lower(name) text_pattern_ops);

-- A department supervises a subject from `since` until `until` (open when NULL). Ended links
-- are kept as history; at most one open link per subject and department.
CREATE TABLE subject_departments (
    id bigserial PRIMARY KEY,
    credit_code text NOT NULL REFERENCES subjects (credit_code) ON DELETE CASCADE,
    department text NOT NULL REFERENCES departments (code),
    since timestamptz NOT NULL DEFAULT now(),
    until timestamptz,
    CONSTRAINT subject_departments_period CHECK (until IS NULL OR until > since)
);
CREATE UNIQUE INDEX subject_departments_one_open
    ON subject_departments (credit_code, department) WHERE until IS NULL;
CREATE INDEX subject_departments_department ON subject_departments (department, credit_code);
CREATE INDEX subject_departments_code ON subject_departments (credit_code);

-- A device watches exactly one subject, in a role (documented set in subjects/models.py,
-- others allowed by the pattern). `point` names the monitoring point, e.g. outlet DW001.
CREATE TABLE device_bindings (
    device_id text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    credit_code text NOT NULL REFERENCES subjects (credit_code) ON DELETE CASCADE,
    role text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_]{1,39}$'),
    point text NOT NULL DEFAULT '',
    since timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_bindings_code ON device_bindings (credit_code);

-- Departments supervising each subject now. A view, so it is current as links change
-- and as periods begin and end, with nothing to refresh.
CREATE VIEW subject_current_departments AS
SELECT credit_code, array_agg(DISTINCT department ORDER BY department) AS departments
FROM subject_departments
WHERE since <= now() AND (until IS NULL OR until > now())
GROUP BY credit_code;

-- The cross-department library (跨部门综合监管对象库): supervised by two or more departments.
CREATE VIEW cross_department_subjects AS
SELECT s.credit_code, s.name, s.address, s.grid, s.industry, s.credit_grade, s.risk_level,
       s.tags, s.attributes, s.created_at, s.updated_at, d.departments
FROM subjects s
JOIN subject_current_departments d USING (credit_code)
WHERE cardinality(d.departments) >= 2;

-- Other instances' directory caches listen on this channel; the payload says what changed.
CREATE FUNCTION subjects_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'device_bindings' THEN
        PERFORM pg_notify('offsite_subjects', 'device:' || COALESCE(NEW.device_id, OLD.device_id));
    ELSE
        PERFORM pg_notify('offsite_subjects',
                          'subject:' || COALESCE(NEW.credit_code, OLD.credit_code));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER subjects_notify AFTER INSERT OR UPDATE OR DELETE ON subjects
    FOR EACH ROW EXECUTE FUNCTION subjects_notify();
CREATE TRIGGER subject_departments_notify AFTER INSERT OR UPDATE OR DELETE ON subject_departments
    FOR EACH ROW EXECUTE FUNCTION subjects_notify();
CREATE TRIGGER device_bindings_notify AFTER INSERT OR UPDATE OR DELETE ON device_bindings
    FOR EACH ROW EXECUTE FUNCTION subjects_notify();

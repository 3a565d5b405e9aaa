-- Optional WGS-84 coordinates of a subject, for the workbench's map; both or neither.
ALTER TABLE subjects
    ADD COLUMN latitude double precision CHECK (latitude BETWEEN -90 AND 90),
    ADD COLUMN longitude double precision CHECK (longitude BETWEEN -180 AND 180),
    ADD CONSTRAINT subjects_coordinates CHECK ((latitude IS NULL) = (longitude IS NULL));

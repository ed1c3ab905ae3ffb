-- Labelling as events are stored, cheaper per batch. Nearly every batch's paths are labelled already (a file is
-- rewritten far more often than it is created, and file_state's trigger sees the paths its events' trigger has just
-- labelled): those are now found by their key alone, without taking the templates' lock or running the matching
-- query. New paths are matched against the templates in the inserting statement itself (what attribution_of('path',
-- ...) gives, without planning its two nested functions for every statement); a process key still goes through
-- attribution_of. The labels given are the same as before.
CREATE OR REPLACE FUNCTION attributions_add(kind text, subjects text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
DECLARE
    unknown text[];
BEGIN
    SELECT array_agg(s.subject ORDER BY s.subject) INTO unknown
      FROM (SELECT DISTINCT p AS subject FROM unnest(subjects) AS p WHERE p IS NOT NULL) AS s
     WHERE NOT EXISTS (SELECT 1 FROM attributions x WHERE x.subject_kind = kind AND x.subject = s.subject);
    IF unknown IS NULL THEN
        RETURN;
    END IF;

    -- As before: a concurrent template change waits for this transaction, and this one for it; rows go in key order.
    LOCK TABLE attribution_templates IN SHARE MODE;
    IF kind = 'path' THEN
        INSERT INTO attributions (subject_kind, subject, template, labels)
        SELECT 'path', s.subject, m.name, coalesce(m.labels, '{}')
          FROM unnest(unknown) AS s(subject)
          LEFT JOIN LATERAL (
                SELECT t.name, (SELECT jsonb_object_agg(u.name, r[u.n]) FROM unnest(t.label_names) WITH ORDINALITY AS u(name, n)) AS labels
                  FROM attribution_templates t
                 CROSS JOIN LATERAL regexp_match(s.subject, t.regex) AS r
                 WHERE t.applies_to = 'path'
                   AND s.subject <> ''
                   AND r IS NOT NULL
                   AND (left(t.pattern, 1) = '/') = (left(s.subject, 1) = '/')
                 ORDER BY t.priority, t.name
                 LIMIT 1) AS m ON true
         WHERE NOT EXISTS (SELECT 1 FROM attributions x WHERE x.subject_kind = 'path' AND x.subject = s.subject)
         ORDER BY s.subject
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO attributions (subject_kind, subject, template, labels)
        SELECT kind, s.subject, a.template, coalesce(a.labels, '{}')
          FROM unnest(unknown) AS s(subject)
          LEFT JOIN LATERAL attribution_of(kind, s.subject) AS a ON true
         WHERE NOT EXISTS (SELECT 1 FROM attributions x WHERE x.subject_kind = kind AND x.subject = s.subject)
         ORDER BY s.subject
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

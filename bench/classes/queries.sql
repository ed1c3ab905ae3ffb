-- The staff's questions as the dashboards ask them (activity on whole hours or whole UTC days, as the counts are kept), for bench/views.sh (EXPLAIN ANALYZE on generated data) and
-- bench/scale.sh. One query per block, after a line `-- query: <name>`. Course cs101, student 0042 and node-3
-- exist in the generated data.

-- query: current_files_of_a_student
SELECT path, size, modified_at, labels FROM current_files
 WHERE labels @> '{"course": "cs101", "student": "0042"}' ORDER BY path;

-- query: current_files_per_label_set
SELECT labels, count(*) AS files, sum(size) AS bytes FROM current_files
 WHERE labels @> '{"course": "cs101"}' GROUP BY labels ORDER BY labels;

-- query: live_inventory_of_a_node
SELECT path, entry_type, size, modified_at, labels FROM current_files WHERE node_name = 'node-3' ORDER BY path;

-- query: versions_of_one_file
SELECT * FROM file_history((SELECT node_name FROM file_state WHERE path = 'cs101-0042/hw3/main.c' LIMIT 1), 'cs101-0042/hw3/main.c');

-- query: versions_of_a_students_assignment
SELECT path, occurred_at, size, length(content) AS content_bytes FROM file_versions
 WHERE labels @> '{"course": "cs101", "student": "0042", "assignment": "hw3"}' ORDER BY occurred_at;

-- query: activity_of_a_course_7_days_hourly
SELECT * FROM activity(date_trunc('hour', now()) - interval '7 days', date_trunc('hour', now()) + interval '1 hour', '1 hour', '{"course": "cs101"}', '{assignment}');

-- query: activity_of_a_student_30_days_daily
SELECT * FROM activity(date_trunc('day', now(), 'UTC') - interval '29 days', date_trunc('day', now(), 'UTC') + interval '1 day', '1 day', '{"course": "cs101", "student": "0042"}', '{assignment}');

-- query: activity_of_everyone_30_days_daily
SELECT * FROM activity(date_trunc('day', now(), 'UTC') - interval '29 days', date_trunc('day', now(), 'UTC') + interval '1 day', '1 day', '{}', '{course}');

-- query: code_size_of_a_student_30_days
SELECT * FROM code_size(now() - interval '30 days', now(), '1 day', '{"course": "cs101", "student": "0042"}', '{assignment}');

-- query: code_size_of_an_assignment_7_days
SELECT * FROM code_size(now() - interval '7 days', now(), '6 hours', '{"course": "cs101", "assignment": "hw9"}', '{}');

-- query: code_size_percentiles_per_assignment
SELECT * FROM code_size_percentiles('{"course": "cs101"}', 'assignment', 'student');

-- query: students_active_most_recently
SELECT * FROM recently_active('{"course": "cs101", "assignment": "hw9"}', 'student', 20);

-- query: builds_and_runs_per_student_of_an_assignment
SELECT value AS assignment, avg(builds) AS builds_per_student, avg(runs) AS runs_per_student, count(*) AS students
  FROM builds_and_runs_per('{"course": "cs101", "assignment": "hw9"}') GROUP BY 1;

-- query: builds_and_runs_per_student_of_a_course
SELECT value AS assignment, avg(builds) AS builds_per_student, avg(runs) AS runs_per_student, count(*) AS students
  FROM builds_and_runs_per('{"course": "cs101"}') GROUP BY 1 ORDER BY 1;

-- query: failing_builds_of_a_course_last_7_days
SELECT started_at, labels ->> 'student' AS student, cwd, source_files, exit_code, signal, output_file FROM failing_builds
 WHERE labels @> '{"course": "cs101"}' AND started_at > now() - interval '7 days'
 ORDER BY started_at DESC LIMIT 50;

-- Fewer index entries per stored event. The history of one path on one node is found as well by the indexes that
-- lead with the path (0004: file_events_path_time, file_events_renamed_from; a path is on few nodes), so these two
-- only cost an index entry per event (per rename) to write.
DROP INDEX IF EXISTS file_events_path;
DROP INDEX IF EXISTS file_events_old_path;

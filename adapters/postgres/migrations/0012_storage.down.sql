DROP TABLE IF EXISTS storage_reservations;
DROP TABLE IF EXISTS storage_objects;
